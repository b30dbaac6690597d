"""The plugin host and the competition interface: hook specs, the pluggy host, what a competition provides."""
