"""Lookups the `harness` commands share: the workspace, a competition by name, its checked config.

Cheap to import: each helper imports what it needs when called, so `harness --version` and
`harness --help` stay free of torch.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness.errors import HarnessError


def workspace_of(ctx) -> Path:
    """The workspace folder of this invocation (`--workspace`, else $HARNESS_WORKSPACE), created if missing."""
    from harness.workspace import workspace_dir

    return workspace_dir(ctx.obj["workspace"])


def competition_named(name):
    """The competition that an installed plugin registers as NAME (an unknown name is a HarnessError)."""
    from harness.host.plugins import get_competition

    return get_competition(name)


def config_for(competition, config_file, overrides, **shortcuts) -> dict:
    """The competition's config: --config FILE (else its defaults), then --set overrides, then shortcut
    options such as epochs=3 (as train.epochs=3; None means not given), checked against its schema."""
    from harness.config.loading import apply_overrides, check_user_config

    schema = competition.config_schema
    if config_file:
        config = check_user_config(competition.read_config(config_file), competition.default_config(),
                                   competition.name, config_file, competition.config_path)
    else:
        config = competition.default_config()
    config = apply_overrides(config, list(overrides), schema=schema)
    for option, value in shortcuts.items():
        if value is not None:  # an error names the option the user typed, e.g. (--lr)
            config = apply_overrides(config, [f"train.{option}={value}"], schema=schema, source=f"--{option}")
    return config


def pretrained_overrides(competition, overrides, pretrained, no_pretrained) -> tuple:
    """--pretrained PATH and --no-pretrained as config overrides."""
    overrides = tuple(overrides)
    if no_pretrained:
        overrides += ("model.pretrained=false",)
    if pretrained:
        if not competition.pretrained_key:
            raise HarnessError(f"{competition.name} takes no --pretrained PATH; see its config for pretrained settings")
        # A JSON string is a valid TOML basic string, so paths with \\ or " survive the override.
        overrides += (f"{competition.pretrained_key}={json.dumps(str(pretrained))}",)
    return overrides


def score_text(summary: dict) -> str:
    """A run summary's validation score in words, e.g. "validation rmse = 0.91234"."""
    score = summary.get("primary_score")
    if "cv_score" in summary:  # a K-fold run
        repeats = f" x {summary['repeats']} repeats" if summary.get("repeats", 1) > 1 else ""
        return (f"CV {summary['primary_metric']} = {summary['cv_score']:.5f} over {summary['folds']} folds{repeats} "
                f"({summary['fold_mean']:.5f} ± {summary['fold_sd']:.5f} per fold)")
    if isinstance(score, (int, float)):
        return f"validation {summary.get('primary_metric', 'score')} = {score:.5f}"
    return summary.get("note", "no validation score")
