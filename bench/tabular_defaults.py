"""How the tabular kind's network defaults were chosen: on Rossmann's training period, a competition that
bench/tabular_kinds.py never reports, entered as a TOML competition like the others.

`harness new rossdev --from ../shared/data/rossmann --train train_subset_100stores.csv.gz --metric rmsle`,
then the TOML edited by hand in two places (store.csv joined on Store; a time split: the last 48 days of
the training period validate), then one `harness train rossdev` per candidate setting. The candidates
differ in epochs, batch size and model kind; the figure is RMSLE on the 48 validation days.

    .venv/bin/python bench/tabular_defaults.py [--data-dir ../shared/data/rossmann]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_report import RESULTS, command_line, environment, write_section  # noqa: E402

HARNESS = str(Path(sys.executable).parent / "harness")
CANDIDATES = {
    "6 epochs, batch 256 (default)": [],
    "12 epochs, batch 256": ["--set", "train.epochs=12"],
    "6 epochs, batch 64": ["--set", "train.batch_size=64"],
    "6 epochs, quantile scaling": ["--set", 'model.cont_scaling="quantile"'],
    "LightGBM (model.kind = gbm)": ["--set", 'model.kind="gbm"'],
}


def harness(workspace, *args) -> str:
    done = subprocess.run([HARNESS, "--workspace", str(workspace), *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stdout + done.stderr)
    return done.stdout + done.stderr


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "rossmann"))
    parser.add_argument("--workspace", default="/tmp/bench-tabular-defaults")
    parser.add_argument("--out", default=str(RESULTS / "tabular_defaults.md"))
    args = parser.parse_args()
    ws = Path(args.workspace)
    harness(ws, "new", "rossdev", "--from", args.data_dir, "--train", "train_subset_100stores.csv.gz",
            "--metric", "rmsle", "--force")
    toml = ws / "competitions" / "rossdev.toml"
    text = toml.read_text().replace("max_card = 20\n", 'max_card = 20\njoins = [{ file = "store.csv", on = ["Store"] }]\n')
    text = re.sub(r"\[validation\].*", '[validation]\nscheme = "time"\ntime = "Date"\nvalid_size = 48\nsplit_seed = 0\n',
                  text, flags=re.S)
    toml.write_text(text)
    rows = []
    for name, extra in CANDIDATES.items():
        out = harness(ws, "train", "rossdev", *extra)
        score = float(re.search(r"validation rmsle = ([0-9.]+)", out).group(1))
        seconds = float(re.search(r"\(([0-9.]+) s on", out).group(1))
        rows.append((name, score, seconds))
        print(name, score, seconds, flush=True)
    lines = ["### The tabular kind's network defaults, chosen on Rossmann's training period", "",
             f"Command: `{command_line()}`", "", *environment(), "",
             "RMSLE of daily sales on the last 48 days of the 100-store training period (a time split, as the "
             "Kaggle test), each candidate one `harness train rossdev` run (seed 0). None of bench/tabular_kinds.py's "
             "competitions is involved, so their figures never chose these defaults.", "",
             "| candidate | RMSLE | seconds |", "|---|---|---|",
             *[f"| {n} | {s:.5f} | {t:.0f} |" for n, s, t in rows]]
    section = "\n".join(lines) + "\n"
    print(section)
    write_section(Path(args.out), "bench/tabular_defaults.py", section)


if __name__ == "__main__":
    main()
