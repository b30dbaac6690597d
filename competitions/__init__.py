"""Declarative default configs, one TOML file per competition. Copy one, edit it, pass --config."""
from pathlib import Path

CONFIG_DIR = Path(__file__).parent


def config_path(name: str) -> Path:
    return CONFIG_DIR / f"{name}.toml"
