"""Competition configs: reading and overriding TOML (loading.py), every key's rule (schema.py), [search] spaces."""
