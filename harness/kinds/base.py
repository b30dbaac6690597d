"""What every competition kind shares: its name, task, Kaggle slug and description come from its TOML,
and the kind's defaults fill in every key the TOML leaves out."""
from __future__ import annotations

from pathlib import Path

from harness.config.loading import check_config, load_config, merged
from harness.host.competition import Competition
from harness.kinds import read_toml
from harness.scoring.tasks import get_task


class KindCompetition(Competition):
    """A competition configured by a TOML file. Subclasses of a kind (a plugin's DogBreeds) set the class
    attributes instead and pass no path; a TOML with ``kind = ...`` passes its own path."""

    kind: str = ""

    def __init__(self, config_path: Path | None = None):
        if config_path is None:
            return
        top = read_toml(Path(config_path))
        self.config_path = Path(config_path)
        self.name = str(top.get("name") or Path(config_path).stem)
        self.description = str(top.get("description") or f"{self.kind} competition from {Path(config_path).name}")
        self.kaggle_slug = str(top.get("kaggle_slug") or "") or None
        if top.get("task"):
            self.task = get_task(top["task"])

    def kind_defaults(self) -> dict:
        """The config a TOML of this kind starts from (every key it may leave out)."""
        return {}

    def read_config(self, path) -> dict:
        """The TOML on top of the kind's defaults, checked as a whole."""
        return check_config(merged(self.kind_defaults(), load_config(path, check=False)), path, self.config_schema)
