import pytest

from harness.config.loading import apply_overrides
from harness.errors import HarnessError

BASE = {"seed": 1, "train": {"lr": 0.01, "epochs": 3, "schedule": "one-cycle", "clip": 0.0, "sizes": [10, 5],
                              "flag": True}}


def test_overrides_parse_and_coerce():
    cfg = apply_overrides(BASE, ["train.lr=1e-3", "train.epochs=7", "train.clip=1", "train.sizes=[4, 2]",
                                 "train.schedule=sgdr", "train.flag=false", "seed=3"])
    assert cfg["train"] == {"lr": 1e-3, "epochs": 7, "schedule": "sgdr", "clip": 1.0, "sizes": [4, 2], "flag": False}
    assert cfg["seed"] == 3
    assert BASE["train"]["lr"] == 0.01  # the original is untouched


@pytest.mark.parametrize("item, message", [
    ("train.lrr=1", "unknown key"),
    ("model.x=1", "no section 'model'"),
    ("train.epochs=2.5", "expected a whole number like 3, got a number"),
    ("train.lr=fast", "expected a number like 0.01, got a string"),
    ("train.flag=1", "expected true or false like true, got a whole number"),
    ("train=1", "is a section"),
    ("train.lr", "expected key=value"),
    ("=3", "no key before '='"),
])
def test_bad_overrides_name_the_key(item, message):
    with pytest.raises(HarnessError, match=message):
        apply_overrides(BASE, [item])


def test_the_hosts_validation_keys_can_be_set_on_a_config_that_leaves_them_out():
    cfg = apply_overrides({**BASE, "validation": {"scheme": "kfold"}}, ["validation.repeats=3", "validation.folds=4"])
    assert cfg["validation"] == {"scheme": "kfold", "repeats": 3, "folds": 4}
    with pytest.raises(HarnessError, match=r"validation\.repeats = 0 must be ≥ 1"):  # still checked by its rule
        apply_overrides(BASE, ["validation.repeats=0"])
    with pytest.raises(HarnessError, match=r"unknown key; valid keys here: .*validation\.repeats"):
        apply_overrides({**BASE, "validation": {"scheme": "kfold"}}, ["validation.repeat=3"])
