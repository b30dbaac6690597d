"""Bad input that is not one competition's: config values out of range (from a TOML file and from
--set, through the CLI), the schema itself, and messages free of numpy reprs."""
import gzip
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w

from harness.config.loading import apply_overrides, check_config, load_config
from harness.config.schema import Num, SCHEDULE, rule_for, rules_for
from harness.host.plugins import get_competition
from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"movielens": "movielens.toml", "rossmann": "rossmann.toml", "imdb": "imdb.toml",
           "dog-breeds": "dog-breeds.toml", "dog-breeds-sample": "dog-breeds-sample.toml"}

# (competition, key, bad value as a TOML literal, what the message says about it)
BAD_VALUES = [
    ("movielens", "train.epochs", "0", "must be ≥ 1"),
    ("movielens", "train.epochs", "2.5", "must be a whole number"),
    ("movielens", "train.batch_size", "0", "must be ≥ 1"),
    ("movielens", "train.lr", "-1", "must be > 0"),
    ("movielens", "train.lr", "0", "must be > 0"),
    ("movielens", "train.lr", "inf", "must be a finite number"),
    ("movielens", "train.lr", "nan", "must be a finite number"),
    ("movielens", "train.wd", "-0.1", "must be ≥ 0"),
    ("movielens", "train.pct_start", "0", "must be in (0, 1)"),
    ("movielens", "train.pct_start", "1", "must be in (0, 1)"),
    ("movielens", "train.clip", "-1", "must be ≥ 0"),
    ("movielens", "train.moms", "[0.95, 0.85]", "must be a list of 3 value(s)"),
    ("movielens", "train.moms", "[0.95, 1.0, 0.95]", "train.moms[1] = 1.0 must be in [0, 1)"),
    ("movielens", "train.cycle_len", "0", "must be ≥ 1"),
    ("movielens", "train.cycle_mult", "0", "must be ≥ 1"),
    ("movielens", "train.early_stopping_patience", "-1", "must be ≥ 0"),
    ("movielens", "train.schedule", '"cosine"', "must be one of constant, one-cycle, sgdr"),
    ("movielens", "train.mixed_precision", '"fp8"', "must be one of auto, bf16, fp16"),
    ("movielens", "data.valid_pct", "1.0", "must be in [0, 1)"),
    ("movielens", "data.split", '"u9"', "must be one of random, u1"),
    ("movielens", "data.unknown_ids", '"ignore"', "must be one of warn, error"),
    ("movielens", "model.kind", '"svd"', "must be one of dot, svdpp, nn"),
    ("movielens", "model.n_factors", "0", "must be ≥ 1"),
    ("movielens", "model.hidden", "[100, 0]", "model.hidden[1] = 0 must be ≥ 1"),
    ("movielens", "model.dropout", "1.0", "must be in [0, 1)"),
    ("movielens", "model.l2", "-0.1", "must be ≥ 0"),
    ("movielens", "model.y_range", "[5.5, 0.0]", "must be increasing"),
    ("movielens", "model.y_range", "[]", "must be a list of 2 value(s)"),
    ("movielens", "seed", "-1", "must be in [0, 4294967295]"),
    ("movielens", "seed", "4294967296", "must be in [0, 4294967295]"),  # numpy's generator takes no more
    ("movielens", "validation.split_seed", "4294967296", "must be in [0, 4294967295]"),
    ("rossmann", "model.dropouts", "[0.001, 1.5]", "model.dropouts[1] = 1.5 must be in [0, 1)"),
    ("rossmann", "model.emb_drop", "1.0", "must be in [0, 1)"),
    ("rossmann", "model.layers", "[1000, 0]", "model.layers[1] = 0 must be ≥ 1"),
    ("rossmann", "model.emb_widths.Store", "-1", "must be ≥ 0"),
    ("rossmann", "model.emb_rule", '"wide"', "must be one of lesson, fastai"),
    ("rossmann", "model.layer_scale", "0", "must be > 0"),
    ("rossmann", "model.y_range", "[3.0]", "must be a list of 0 or 2 value(s)"),
    ("rossmann", "data.valid_days", "-1", "must be ≥ 0"),
    ("rossmann", "data.events", '["Promo", "Sunny"]', "data.events[1] = 'Sunny' must be one of Promo"),
    ("rossmann", "data.event_window", "0", "must be ≥ 1"),
    ("dog-breeds", "data.image_size", "0", "must be > 0"),
    ("dog-breeds", "data.min_scale", "0", "must be in (0, 1]"),
    ("dog-breeds", "model.ps", "[0.25, 1.0]", "model.ps[1] = 1.0 must be in [0, 1)"),
    ("dog-breeds", "model.xtra_fc", "[0]", "model.xtra_fc[0] = 0 must be ≥ 1"),
    ("dog-breeds", "model.arch", '"vgg16"', "must be one of resnet18, resnet34"),
    ("dog-breeds", "predict.tta", "-1", "must be ≥ 0"),
    ("dog-breeds", "train.unfreeze_lrs", "[0.001, -1, 0.01]", "train.unfreeze_lrs[1] = -1 must be > 0"),
    ("dog-breeds", "data.corrupt_images", '"ignore"', "must be one of error, skip"),
    ("dog-breeds-sample", "data.valid_pct", "-0.1", "must be in [0, 1)"),
    ("imdb", "train.stages", "[]", "must have at least 1 entry"),
    ("imdb", "train.stages", "[1]", "train.stages[0] = 1 must be a table"),
    ("imdb", "train.stages", "[{ lr_mult = 1.0 }]", "must set freeze_to"),
    ("imdb", "train.stages", "[{ freeze_to = -1, lr_mult = -1.0 }]", "train.stages[0].lr_mult = -1.0 must be > 0"),
    ("imdb", "train.stages", "[{ freeze_to = -1, speed = 2 }]", "may set only freeze_to, lr_mult, epochs"),
    ("imdb", "train.betas", "[0.7, 1.0]", "train.betas[1] = 1.0 must be in [0, 1)"),
    ("imdb", "lm.epochs", "-1", "must be ≥ 0"),
    ("imdb", "lm.bptt", "0", "must be ≥ 1"),
    ("imdb", "lm.lr", "-0.003", "must be > 0"),
    ("imdb", "lm.adaptive_cutoffs", "[6000, 2000]", "must be increasing"),
    ("imdb", "model.kind", '"svm"', "must be one of awd-lstm, nbsvm"),
    ("imdb", "model.drop_mult", "2.0", "must be in [0, 2)"),
    ("imdb", "text.min_freq", "0", "must be ≥ 1"),
    ("imdb", "nbsvm.C", "0", "must be > 0"),
]


def _literal(text):
    return tomllib.loads(f"v = {text}")["v"]


def _competition(config_name):
    return "dog-breeds" if config_name.startswith("dog-breeds") else config_name


def _one_error_line(result, key):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: config: {key}"), result.output
    assert "Traceback" not in result.output


def _set(config: dict, key: str, value) -> None:
    *sections, leaf = key.split(".")
    node = config
    for part in sections:
        node = node[part]
    node[leaf] = value


@pytest.mark.parametrize("content, says", [
    ("", "lacks name, metric, seed and"),  # an empty file (was a KeyError traceback)
    ('name = "movielens"\n[train]\nepochs = 1\n', "lacks metric, seed, data and"),
    ('name = "rossmann"\n[train]\nepochs = 1\n', "is for competition 'rossmann', not 'movielens'"),
])
def test_config_file_without_the_competitions_keys_is_one_line_naming_the_file(cli_run, workspace, tmp_path, content,
                                                                                says):
    path = tmp_path / "partial.toml"
    path.write_text(content)
    for command in ("train", "model", "lr-find"):
        result = cli_run(command, "movielens", "--config", path, "--epochs", "1", expect=2) if command == "train" \
            else cli_run(command, "movielens", "--config", path, expect=2)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and f"config file {path}" in lines[0] and says in lines[0], result.output
        assert str(ROOT / "competitions" / "movielens.toml") in lines[0] or "is for competition" in lines[0]
    assert not (workspace / "runs").exists()


def test_config_file_without_some_keys_of_a_section_names_them(cli_run, tmp_path):
    config = tomllib.loads((ROOT / "competitions" / "rossmann.toml").read_text())
    del config["data"]["events"], config["model"]["layers"]
    path = tmp_path / "old.toml"
    path.write_text(tomli_w.dumps(config))
    out = cli_run("train", "rossmann", "--config", path, expect=2).output
    assert "lacks " in out and "data.events" in out and "model.layers" in out and "Traceback" not in out


@pytest.mark.parametrize("config_name, key, text, rule", BAD_VALUES, ids=[f"{c}-{k}={t}" for c, k, t, _ in BAD_VALUES])
def test_config_file_value_out_of_range_is_one_line_naming_key_value_and_file(cli_run, workspace, tmp_path,
                                                                               config_name, key, text, rule):
    config = tomllib.loads((ROOT / "competitions" / CONFIGS[config_name]).read_text())
    _set(config, key, _literal(text))
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(config))
    result = cli_run("train", _competition(config_name), "--config", path, expect=None)
    _one_error_line(result, key)
    assert rule in result.output and f"({path})" in result.output
    assert not (workspace / "runs").exists()


@pytest.mark.parametrize("config_name, key, text, rule", BAD_VALUES, ids=[f"{c}-{k}={t}" for c, k, t, _ in BAD_VALUES])
def test_set_value_out_of_range_is_one_line_naming_key_value_and_set(cli_run, workspace, config_name, key, text, rule):
    if config_name == "dog-breeds-sample":
        pytest.skip("the same keys as dog-breeds")
    if key == "train.epochs" and text == "2.5":
        pytest.skip("--set checks the default's type first: 'expected a whole number'")
    result = cli_run("train", _competition(config_name), "--set", f"{key}={text}", expect=None)
    _one_error_line(result, key)
    assert rule in result.output and "(--set)" in result.output
    assert not (workspace / "runs").exists()


@pytest.mark.parametrize("option, value, key", [("--lr", "-1", "train.lr"), ("--lr", "0", "train.lr"),
                                                 ("--epochs", "0", "train.epochs")])
def test_shortcut_options_out_of_range(cli_run, workspace, option, value, key):
    result = cli_run("train", "movielens", option, value, expect=None)
    _one_error_line(result, key)
    assert result.output.rstrip().endswith(f"({option})")  # names the option the user typed
    assert not (workspace / "runs").exists()


@pytest.mark.parametrize("entry, message", [
    ('{ type = "float", low = 0.0, high = 0.1, log = true }', "search.'train.lr'.low = 0.0 must be > 0 with log = true"),
    ('{ type = "float", low = 0.1, high = 0.01 }', "search.'train.lr'.low = 0.1 must be below high (0.01)"),
    ('{ type = "float", low = -0.1, high = 0.01 }', "search.'train.lr'.low = -0.1 searches train.lr, which must be > 0"),
    ('{ type = "grid", low = 0.1, high = 0.01 }', "search.'train.lr'.type = 'grid' must be one of float, int"),
    ('{ type = "float", low = 0.001 }', "must set high"),
    ('{ type = "float", low = 0.001, high = 0.1, log = "yes" }', "search.'train.lr'.log = 'yes' must be true or false"),
])
def test_config_file_search_space_outside_the_key_range(cli_run, workspace, tmp_path, entry, message):
    config = tomllib.loads((ROOT / "competitions" / "movielens.toml").read_text())
    config["search"]["train.lr"] = _literal(entry)
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(config))
    result = cli_run("tune", "movielens", "--config", path, "--trials", 1, expect=None)
    _one_error_line(result, "search.'train.lr'")
    assert message in result.output
    assert not (workspace / "runs").exists()


def test_config_file_with_a_byte_order_mark_reads_as_without(cli_run, tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + (ROOT / "competitions" / "movielens.toml").read_bytes())
    assert load_config(path) == load_config(ROOT / "competitions" / "movielens.toml")


def test_search_bound_outside_a_dropout_range_names_the_searched_key():
    config = load_config(ROOT / "competitions" / "dog-breeds.toml")
    config["search"]["model.ps"]["high"] = 1.0
    with pytest.raises(HarnessError, match=r"search.'model.ps'.high = 1.0 searches model.ps, which must be in \[0, 1\)"):
        check_config(config, "x.toml")


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_key_of_every_shipped_config_has_a_rule_and_passes_it(name):
    schema = get_competition(name.removesuffix("-sample")).config_schema
    config = load_config(ROOT / "competitions" / CONFIGS[name], schema)  # raises if a default breaks its rule
    rules = rules_for(config, schema)
    unruled = []

    def walk(node, path):
        for key, value in node.items():
            here = (*path, key)
            if here == ("search",):
                continue
            if rule_for(rules, here) is None:
                if isinstance(value, dict):
                    walk(value, here)
                else:
                    unruled.append(".".join(here))

    walk(config, ())
    assert unruled == []


def test_schema_choices_are_what_the_code_accepts():
    """The schema cannot import these (torch), so it repeats them; this keeps both the same."""
    from harness.models.awd_lstm import SIZES
    from harness.models.vision import BACKBONES
    from harness.train.schedules import SCHEDULES

    assert SCHEDULE.values == tuple(SCHEDULES)
    assert get_competition("imdb").config_schema["model.size"].values == tuple(SIZES)
    assert get_competition("dog-breeds").config_schema["model.arch"].values == tuple(BACKBONES)


def test_keys_without_a_rule_are_allowed_and_a_competition_can_add_rules(tmp_path):
    path = tmp_path / "plugin.toml"
    path.write_text('name = "third-party"\n[model]\nwidth = 0\n[train]\nepochs = 1\n')
    assert load_config(path)["model"]["width"] == 0  # a plugin's own key: no rule, no error
    extra = {"model.width": Num(1, whole=True)}
    with pytest.raises(HarnessError, match=r"^config: model.width = 0 must be ≥ 1 \(.*plugin.toml\)$"):
        load_config(path, schema=extra)
    with pytest.raises(HarnessError, match=r"^config: model.width = -2 must be ≥ 1 \(--set\)$"):
        apply_overrides(load_config(path), ["model.width=-2"], schema=extra)


def test_config_errors_come_before_torch_numpy_and_pandas_are_imported(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "movielens"\n[train]\nepochs = 0\n')
    code = ("import sys\nfrom harness.config.loading import load_config\nfrom harness.errors import HarnessError\n"
            f"try:\n    load_config({str(path)!r})\nexcept HarnessError as exc:\n    print(exc)\n"
            "print(sorted(m for m in ('torch', 'numpy', 'pandas') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.splitlines() == [f"config: train.epochs = 0 must be ≥ 1 ({path})", "[]"]


def test_data_errors_show_python_values_not_numpy_reprs(tmp_path):
    from harness.data.files import check_no_duplicates, check_values, read_table

    path = tmp_path / "t.csv"
    pd.DataFrame({"a": [1, 1], "b": [2.5, 2.5], "c": ["", "x"]}).to_csv(path, index=False)
    frame = read_table(path)
    messages = []
    for check in (lambda: check_no_duplicates(frame, ["a", "b"], path),
                  lambda: check_values(frame.assign(b=[np.inf, 1.0]), "b", path, lo=0),
                  lambda: check_values(frame, "a", path, allowed=(0, 2)),
                  lambda: read_table(path, numeric=("c",))):
        with pytest.raises(HarnessError) as exc:
            check()
        messages.append(str(exc.value))
    assert "first (a=1, b=2.5)" in messages[0]
    assert "column b has 1 value(s) negative, infinite or empty, first inf at data row 1" in messages[1]
    assert "column a has 2 value(s) other than 0 or 2, first 1 at data row 1" in messages[2]
    assert "column c has 2 non-numeric or empty value(s), first nan at data row 1" in messages[3]
    assert not any("np." in m for m in messages), messages


def test_a_long_bad_value_is_shown_cut_short(tmp_path):
    from harness.data.files import read_table

    path = tmp_path / "items.csv"
    path.write_text("id,name\n" + "x" * 900 + ",a\n")
    with pytest.raises(HarnessError) as caught:
        read_table(path, required=("id", "name"), integer=("id",))
    message = str(caught.value)
    assert f"{path}: column id has 1 non-numeric" in message and "'" + "x" * 57 + "...'" in message
    assert len(message) < len(str(path)) + 150


@pytest.mark.parametrize("args, message", [
    (["--start-lr", "-1"], "--start-lr -1: give a finite learning rate above 0"),
    (["--start-lr", "nan"], "--start-lr nan: give a finite learning rate above 0"),
    (["--end-lr", "inf"], "--end-lr inf: give a finite learning rate above 0"),
    (["--num-it", "0"], "--num-it 0: give at least 5 batches"),
    (["--num-it", "1"], "--num-it 1: give at least 5 batches"),
    (["--start-lr", "1", "--end-lr", "1e-5"], "--end-lr 1e-05 is not above --start-lr 1"),
])
def test_lr_find_sweep_options_are_one_error_line_and_no_plot(cli_run, workspace, args, message):
    get_competition("movielens").write_sample(workspace / "data" / "movielens", seed=0, n_users=60, n_items=40,
                                              n_ratings=1500)
    result = cli_run("lr-find", "movielens", *args, expect=2)
    assert result.output.strip().splitlines() == [result.output.strip()]  # one line: no warnings, no "suggested lr"
    assert result.output.startswith(f"error: {message}"), result.output
    assert not (workspace / "lr_find").exists()


@pytest.mark.parametrize("competition, setting, message", [
    ("rossmann", "model.dropouts=0.5", "config: model.dropouts = 0.5 must be a list (--set)"),
    ("rossmann", "model.dropouts=1.5", "config: model.dropouts = 1.5 must be a list (--set)"),
    ("rossmann", "model.layers=100", "config: model.layers = 100 must be a list (--set)"),
    ("dog-breeds", "model.ps=1.5", "config: model.ps = 1.5 must be in [0, 1) (--set)"),  # one value will do
])
def test_a_bare_value_for_a_list_key_names_the_key_not_an_entry(cli_run, workspace, competition, setting, message):
    """It was taken as a one-entry list: refused as model.ps[0], or (0.5) passed to fail later as
    "model.dropouts has 1 values for 2 model.layers", after the data was read."""
    result = cli_run("train", competition, "--set", setting, expect=2)
    assert result.output.strip() == f"error: {message}"
    assert not (workspace / "runs").exists()


def test_one_value_where_the_rule_allows_it_stays_one_value_and_other_lists_want_a_list():
    config = get_competition("dog-breeds").default_config()
    assert apply_overrides(config, ["model.ps=0.3"])["model"]["ps"] == 0.3  # one dropout for every layer
    with pytest.raises(HarnessError, match=r"^--set model.sizes=3: expected a list like \[1, 2\], got a whole number$"):
        apply_overrides({"model": {"sizes": [1, 2]}}, ["model.sizes=3"])  # a plugin's key without a rule


def _random_bytes_with_tabs(size=4000, seed=0):
    rng = np.random.default_rng(seed)
    data = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
    data[::37] = b"\t" * len(data[::37])  # tab-separated fields to pandas' tokenizer
    return bytes(data)


@pytest.mark.parametrize("content, holds", [
    (_random_bytes_with_tabs(), "binary data; put the competition's CSV file in its place"),
    (gzip.compress(b"id,userId,movieId\n1,1,1\n"), "gzip-compressed data; decompress it"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + _random_bytes_with_tabs(500),
     "a PNG image; put the competition's CSV file in its place"),
])
def test_a_binary_file_as_a_csv_is_one_line_saying_it_is_no_csv_text(cli_run, workspace, content, holds):
    """pandas said "could not be parsed: Error tokenizing data. C error: Expected 1 fields in line 5, saw 4"
    or "'utf-8' codec can't decode byte 0x8b in position 1"."""
    data = workspace / "data" / "movielens"
    get_competition("movielens").write_sample(data, seed=0, n_users=60, n_items=40, n_ratings=1500)
    (data / "test.csv").write_bytes(content)
    result = cli_run("train", "movielens", "--epochs", "1", expect=2)
    assert result.output.startswith(f"error: {data / 'test.csv'} is not a CSV text file: it holds {holds}")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert not (workspace / "runs").exists()


def test_text_tables_still_read_and_other_encodings_are_named(tmp_path):
    from harness.data.files import read_table

    tsv = tmp_path / "reviews.tsv"
    tsv.write_bytes(b"id\ttext\n1\tgood\x0cfilm\n2\tcaf\xc3\xa9\n")  # a form feed and UTF-8 are text
    assert read_table(tsv)["text"].tolist() == ["good\x0cfilm", "café"]
    latin = tmp_path / "items.csv"
    latin.write_bytes("id,title\n1,café\n".encode("latin-1"))
    assert read_table(latin, encoding="latin-1")["title"].tolist() == ["café"]
    with pytest.raises(HarnessError, match=r"items.csv is not UTF-8 text \(byte 0xe9 is not UTF-8\); save it as UTF-8"):
        read_table(latin)
    wide = tmp_path / "wide.csv"
    wide.write_bytes("id,title\n1,a\n".encode("utf-16"))
    with pytest.raises(HarnessError, match=r"wide.csv is UTF-16 text; save it as UTF-8$"):
        read_table(wide)
    packed = tmp_path / "train.csv.gz"
    packed.write_bytes(gzip.compress(_random_bytes_with_tabs()))
    with pytest.raises(HarnessError, match=r"train.csv.gz is not a CSV text file: it holds binary data"):
        read_table(packed)
