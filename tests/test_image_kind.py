"""The image-classification kind from a TOML file alone: one folder per class, or a labels CSV and image
folders under names of the competition's own; trained end to end (random weights, tiny images), the
submission's columns are the classes, K folds work, and bad layouts are one-line errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.errors import HarnessError
from harness.kinds import competition_from_toml
from harness.kinds.image import ImageClassification
from harness.runs import runner
from harness.runs.kfold import train_folds
from harness_plugins.dog_breeds.sample import draw_breed

# class -> the generated "breed" that draws it (a coloured shape on noise: easy for a small CNN)
SHAPES = {"cat": "beagle", "dog": "boxer", "fox": "pug"}
SIZE = 32

# The keys such a TOML must set for a quick CPU run; everything else is the kind's defaults.
TINY = '''
[model]
arch = "resnet18"
pretrained = false

[train]
batch_size = 8
epochs = 1
unfreeze_cycles = 1
unfreeze_lrs = [0.001, 0.003, 0.01]

[predict]
tta = 1
'''


def save_image(path, label, rng, suffix=".jpg"):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = draw_breed(SHAPES[label], SIZE, rng)
    image.save(path.with_suffix(suffix), format="PNG" if suffix == ".png" else "JPEG")


def write_folders(root, n_per_class=8, n_test=5, seed=0):
    """train/<class>/<n>.jpg and test/<id>.jpg, no sample submission."""
    rng = np.random.default_rng(seed)
    for label in SHAPES:
        for i in range(n_per_class):
            save_image(root / "train" / label / f"{label}{i}.jpg", label, rng)
    for i in range(n_test):
        save_image(root / "test" / f"t{i:02d}.jpg", list(SHAPES)[i % len(SHAPES)], rng)
    return root


def write_labels_csv(root, n_per_class=8, n_test=5, seed=0):
    """Other names than Kaggle's dog breeds: train_labels.csv (image,species), imgs/<image>.png,
    test_imgs/<image>.png and sampleEntry.csv whose ids are not in sorted order."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_per_class * len(SHAPES)):
        label = list(SHAPES)[i % len(SHAPES)]
        save_image(root / "imgs" / f"img{i:03d}", label, rng, suffix=".png")
        rows.append({"image": f"img{i:03d}", "species": label})
    pd.DataFrame(rows).to_csv(root / "train_labels.csv", index=False)
    ids = [f"x{i}" for i in reversed(range(n_test))]
    for i, image_id in enumerate(ids):
        save_image(root / "test_imgs" / image_id, list(SHAPES)[i % len(SHAPES)], rng, suffix=".png")
    classes = sorted(SHAPES)
    pd.DataFrame({"image": ids, **{c: 1 / len(classes) for c in classes}}).to_csv(root / "sampleEntry.csv", index=False)
    return root


def toml(path, data: str, name="shapes", extra="") -> ImageClassification:
    path.write_text(f'name = "{name}"\nkind = "image-classification"\ntask = "multiclass"\nmetric = "accuracy"\n'
                    f"{extra}\n[data]\nimage_size = {SIZE}\nnum_workers = 0\n{data}\n{TINY}")
    return competition_from_toml(path)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return write_folders(tmp_path_factory.mktemp("folders"))


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    return write_labels_csv(tmp_path_factory.mktemp("labelled"))


def check_probabilities(submission, classes):
    assert list(submission.columns[1:]) == classes
    values = submission[classes].to_numpy()
    assert np.allclose(values.sum(axis=1), 1.0, atol=1e-6) and (values >= 0).all()


# ---------------------------------------------------------------------- the two layouts, end to end
def test_folders_layout_from_a_toml_alone_through_the_cli(cli_run, workspace, folders):
    (workspace / "competitions").mkdir(parents=True)
    comp = toml(workspace / "competitions" / "shapes.toml", 'layout = "folders"')
    assert isinstance(comp, ImageClassification) and comp.name == "shapes"
    assert comp.task.kind == "multiclass" and comp.task.outputs == "log_probabilities"
    config = comp.default_config()
    # What the TOML leaves out is the kind's defaults (dog breeds' recipe).
    assert config["train"]["lr"] == 0.01 and config["model"]["ps"] == [0.25, 0.5] and config["name"] == "shapes"
    assert config["data"]["sample_submission"] == ""  # looked for, not declared

    cli_run("train", "shapes", "--data-dir", folders)
    (run_dir,) = (workspace / "runs" / "shapes").iterdir()
    assert pd.read_csv(run_dir / "history.csv")["stage"].tolist() == [0, 1]  # head on the cache, then unfrozen
    summary = pd.read_json(run_dir / "summary.json", typ="series")
    assert summary["primary_metric"] == "accuracy"
    submission = pd.read_csv(run_dir / "submission.csv")
    assert submission.columns[0] == "id" and submission["id"].tolist() == [f"t{i:02d}" for i in range(5)]
    check_probabilities(submission, sorted(SHAPES))
    raw = comp.load(folders, config)
    assert raw.classes == sorted(SHAPES) and len(raw.train_paths) == 24
    assert raw.labels == [c for c in sorted(SHAPES) for _ in range(8)]  # class by class, files sorted


def test_labels_csv_layout_with_its_own_names(workspace, labelled, tmp_path):
    comp = toml(tmp_path / "species.toml", 'layout = "labels-csv"\nlabels = "train_labels.csv"\nid = "image"\n'
                'label = "species"\nimages = "imgs"\ntest = "test_imgs"\nextensions = [".png"]', name="species")
    config = comp.default_config()
    assert config["validation"]["target"] == "species"  # stratified by the declared label column
    run = runner.train(comp, config, labelled, workspace, echo=False)
    submission = pd.read_csv(run.path("submission.csv"))
    sample = pd.read_csv(labelled / "sampleEntry.csv")  # found by its name: no data.sample_submission
    assert list(submission.columns) == list(sample.columns)  # image, then the classes in sorted order
    assert submission["image"].tolist() == sample["image"].tolist()  # the sample's row order
    check_probabilities(submission, sorted(SHAPES))
    outputs = np.load(run.path("test_preds.npy"))
    assert np.allclose(comp.submission_from_outputs(outputs, submission).iloc[:, 1:], submission.iloc[:, 1:])


def test_k_folds_on_the_kind(workspace, labelled, tmp_path):
    comp = toml(tmp_path / "species.toml", 'labels = "train_labels.csv"\nid = "image"\nlabel = "species"\n'
                'images = "imgs"\ntest = "test_imgs"', name="species")  # layout inferred from the labels CSV
    config = comp.default_config()
    config["train"]["unfreeze_cycles"], config["predict"]["tta"] = 0, 0
    raw = comp.load(labelled, config)
    assert comp.layout(labelled, config["data"]) == "labels-csv"
    rows = comp.fold_rows(raw, config)
    assert list(rows.columns) == ["path", "species"] and len(rows) == 24
    run = train_folds(comp, config, labelled, workspace, 3, echo=False)
    folds = pd.read_csv(run.path("folds.csv"))
    assert sorted(set(folds["fold"])) == [0, 1, 2] and len(folds) == 24
    for i in range(3):  # stratified: every class in every fold
        assert set(rows["species"][folds["fold"].to_numpy() == i]) == set(SHAPES)
    oof = run.array("oof_preds.npy")
    assert oof.shape == (24, 3) and not np.isnan(oof).any()
    submission = pd.read_csv(run.path("submission.csv"))
    assert list(submission.columns) == ["image", *sorted(SHAPES)]
    check_probabilities(submission, sorted(SHAPES))


# ---------------------------------------------------------------------- bad layouts and TOMLs
def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_class_folder_without_images(folders, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(folders, data)
    (data / "train" / "owl").mkdir()
    (data / "train" / "owl" / "notes.txt").write_text("no images here")
    comp = toml(tmp_path / "c.toml", "")  # layout inferred: class folders
    with pytest.raises(HarnessError) as exc:
        comp.load(data, comp.default_config())
    assert one_line(exc).startswith(f"{data / 'train' / 'owl'}: a class folder with no .jpg, .jpeg, .png images")


def test_a_labels_csv_naming_a_missing_image(labelled, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(labelled, data)
    (data / "imgs" / "img004.png").unlink()
    comp = toml(tmp_path / "c.toml", 'labels = "train_labels.csv"\nid = "image"\nlabel = "species"\n'
                'images = "imgs"\ntest = "test_imgs"')
    with pytest.raises(HarnessError) as exc:
        comp.load(data, comp.default_config())
    assert one_line(exc) == (f"1 image(s) listed in train_labels.csv are missing from {data / 'imgs'}, first "
                             "img004 (.jpg, .jpeg or .png); copy the images there")


def test_an_unknown_layout(tmp_path):
    comp = toml(tmp_path / "c.toml", 'layout = "grid"')
    with pytest.raises(HarnessError) as exc:
        comp.default_config()
    assert one_line(exc).startswith("config: data.layout = 'grid' must be \"labels-csv\"")
    assert f"({tmp_path / 'c.toml'})" in str(exc.value)


def test_no_layout_to_infer(tmp_path):
    (tmp_path / "data" / "train").mkdir(parents=True)
    Image.new("RGB", (SIZE, SIZE)).save(tmp_path / "data" / "train" / "a.jpg")
    comp = toml(tmp_path / "c.toml", "")
    with pytest.raises(HarnessError) as exc:
        comp.load(tmp_path / "data", comp.default_config())
    assert one_line(exc).startswith(f"{tmp_path / 'data'}: found neither labels.csv (a labels CSV) nor class folders")


def test_a_misspelt_key_and_a_regression_task(tmp_path):
    comp = toml(tmp_path / "c.toml", 'lables = "x.csv"')
    with pytest.raises(HarnessError) as exc:
        comp.default_config()
    assert one_line(exc).startswith(f"{tmp_path / 'c.toml'}: unknown key(s) data.lables")
    path = tmp_path / "r.toml"
    path.write_text('kind = "image-classification"\ntask = "regression"\n')
    with pytest.raises(HarnessError) as exc:
        competition_from_toml(path)
    assert 'set task = "multiclass"' in one_line(exc)
