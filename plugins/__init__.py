"""The built-in competition plugins. Each is a thin module: what is special about its competition."""
