"""The built-in competition plugins, installed as ``harness_plugins``: one package per competition,
the shape a third-party plugin copies (see the README's "Writing a competition plugin")."""
