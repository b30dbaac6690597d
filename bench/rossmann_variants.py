"""Rossmann: training and model variants of the default network on the tuning window, to see whether
any of them earns a change of default.

`bench/tune_rossmann.py` searched the rates, dropouts and sizes (30 trials; none beat the default on the
tuning window). This script tries what that search space leaves out: more epochs, other batch sizes
(with epochs to match), batch norm, fastai's embedding-width rule, continuous inputs as normal scores of
their training quantiles and no weather columns (config keys);
and three changes no config key makes, written here as subclasses of the competition: training on the
metric itself (RMSPE's squared relative error, alone or added to the squared log error), training only on
the rows whose recent sales level reads a full year, and Customers as a second target the network
learns beside log sales (multi-task). Each variant is the default config with a few keys changed (or the
default with one of those subclasses), trained on the days before the tuning window (the 48 days just before the
reported ones, as in bench/rossmann_quality.py) with each of ``--seeds``, and scored there; the reported
window is not read. Shown per variant: each seed's RMSPE, their mean, and the seed ensemble (the mean of
the seeds' log-sales outputs).

The rule, fixed before the run: a variant replaces the default only if its mean over the seeds is lower
than the default's by more than twice the standard error of the difference of the two means (from each
one's spread over the seeds); otherwise the default stays. Six seeds by default: the first run of this
script used three (0-2) and a fixed margin of 0.001, but the default network's next seeds scored up to
0.006 worse on this window than those three (the table shows seeds 0-5), so three seeds and 0.001 could
not tell a variant from luck.

    .venv/bin/python bench/rossmann_variants.py --data-dir ../shared/data/rossmann

Writes its own section of bench/results/rossmann_quality.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import command_line, environment, write_section  # noqa: E402
from bench.rossmann_blend import common_arguments, fit_seeds  # noqa: E402
from bench.rossmann_quality import TuningWindow, data_folder, describe, window_masks  # noqa: E402
from harness.config.loading import apply_overrides  # noqa: E402
from harness.progress import echo  # noqa: E402
from harness.scoring.metrics import exp_rmspe_fn  # noqa: E402
from harness_plugins.rossmann import Rossmann  # noqa: E402
from harness_plugins.rossmann.features import WEATHER_COLUMNS  # noqa: E402

SEEDS = [0, 1, 2, 3, 4, 5]


def difference_error(a: list[float], b: list[float]) -> float:
    """Standard error of mean(a) - mean(b) for independent seeds."""
    return (statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) ** 0.5


def relative_error_loss(log_pred, log_target):
    """RMSPE's own term on log outputs: ((sales - predicted) / sales)^2 = (1 - exp(log_pred - log_target))^2."""
    return ((1 - torch.exp(log_pred - log_target)) ** 2).mean()


class RelativeErrorLoss(TuningWindow):
    """Trains on the metric instead of the squared log error."""

    def loss_fn(self, config):
        return relative_error_loss


class BothLosses(TuningWindow):
    """Trains on the squared log error plus the squared relative error."""

    def loss_fn(self, config):
        squared_log_error = super().loss_fn(config)
        return lambda log_pred, log_target: (squared_log_error(log_pred, log_target)
                                             + relative_error_loss(log_pred, log_target))


class FullRecentYear(TuningWindow):
    """Trains only on rows dated at least recent_lag + 364 days after train.csv's first day, whose recent sales
    level is a mean over a whole year (earlier rows' levels average fewer days)."""

    def split_masks(self, frame, config):
        train, valid = super().split_masks(frame, config)
        d = config["data"]
        start = frame["Date"].min() + np.timedelta64(d["recent_lag"] + max(d["recent_days"]) - 1, "D")
        return train & (frame["Date"] >= start).to_numpy(), valid


class CustomersTarget(TuningWindow):
    """Multi-task: a second output learns log(Customers) on the training rows (weight 0.5 in the loss); the
    prediction, and every score, is the first output, log sales. Customers are unknown for test rows, so
    they can be a target but not an input."""

    WEIGHT = 0.5

    def prepare(self, raw, config, rows=None):
        prepared = super().prepare(raw, config, rows)
        frame = self.features(raw, config)
        train, _ = self.split_masks(frame, config)
        customers = np.log(frame["Customers"].to_numpy(dtype=np.float64)[train]).astype(np.float32)
        loader = prepared.train_dl
        loader.target = torch.stack([loader.target, torch.from_numpy(customers)], dim=1)
        return prepared

    def build_model(self, state, config):
        net = super().build_model(state, config)
        head = torch.nn.Linear(net.head.in_features, 2)  # log sales, log customers
        with torch.no_grad():
            head.bias.fill_(float(net.head.bias))  # both start at the mean log sales, as the one output did
        net.head = head
        return SalesOutputInEval(net)

    def loss_fn(self, config):
        squared_log_error = super().loss_fn(config)

        def loss(outputs, targets):
            if outputs.dim() == 1:  # evaluation: log sales only
                return squared_log_error(outputs, targets)
            return (squared_log_error(outputs[:, 0], targets[:, 0])
                    + self.WEIGHT * squared_log_error(outputs[:, 1], targets[:, 1]))
        return loss


class SalesOutputInEval(torch.nn.Module):
    """Both outputs while training, log sales alone when evaluating or predicting."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, cats, conts):
        outputs = self.net(cats, conts)
        return outputs if self.training else outputs[:, 0]

    def layer_groups(self):
        return self.net.layer_groups()


def without(columns, dropped):
    return [c for c in columns if c not in dropped]


def variants(config) -> dict[str, tuple[dict, type]]:
    """Name: (changed config keys, the competition class that trains it)."""
    weather = {*WEATHER_COLUMNS}
    return {
        "default": ({}, TuningWindow),
        "8 epochs": ({"train.epochs": 8}, TuningWindow),
        "batch 128": ({"train.batch_size": 128}, TuningWindow),
        "batch 512, 8 epochs": ({"train.batch_size": 512, "train.epochs": 8}, TuningWindow),
        "batch 512, 12 epochs": ({"train.batch_size": 512, "train.epochs": 12}, TuningWindow),
        "batch 1024, 10 epochs, lr 0.006": ({"train.batch_size": 1024, "train.epochs": 10, "train.lr": 0.006},
                                            TuningWindow),
        "batch norm": ({"model.batchnorm": True}, TuningWindow),
        "fastai embedding widths": ({"model.emb_rule": "fastai"}, TuningWindow),
        "quantile scaling": ({"model.cont_scaling": "quantile"}, TuningWindow),
        "no weather columns": ({"data.cat_cols": without(config["data"]["cat_cols"], weather),
                                "data.cont_cols": without(config["data"]["cont_cols"], weather)}, TuningWindow),
        "loss: squared relative error": ({}, RelativeErrorLoss),
        "loss: squared log + relative error": ({}, BothLosses),
        "rows with a full recent year only": ({}, FullRecentYear),
        "Customers as a second target": ({}, CustomersTarget),
    }


def describe_change(changes: dict, competition: type) -> str:
    """The changed keys (column lists by what they leave out) and the class, where not TuningWindow."""
    parts = [f"`{k} = {v}`" for k, v in changes.items() if not k.endswith("_cols")]
    if any(k.endswith("_cols") for k in changes):
        parts.append("`data.cat_cols` and `data.cont_cols` without " + ", ".join(WEATHER_COLUMNS))
    if competition is not TuningWindow:
        parts.append(f"class `{competition.__name__}` (this script)")
    return ", ".join(parts) or "(none)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.set_defaults(seeds=SEEDS)
    args = parser.parse_args()
    if len(args.seeds) < 2:
        raise SystemExit("--seeds: give two or more (the rule needs each variant's spread over seeds)")
    torch.set_num_threads(args.threads)
    comp = Rossmann()
    config = comp.default_config()
    raw = comp.load(data_folder(args.data_dir), config)
    frame = comp.features(raw, config)
    train, tuning = window_masks(comp, frame, config, tuning=True)
    window = frame[tuning]
    targets = np.log(window["Sales"].to_numpy(dtype=np.float64))
    rows = []
    for name, (changes, competition) in variants(config).items():
        cfg = apply_overrides(config, changes)
        outputs, scores, fit_seconds = fit_seeds(name, competition(), raw, cfg, args.seeds, window, targets)
        ensemble = exp_rmspe_fn(np.mean(outputs, axis=0), targets)
        seconds = statistics.mean(fit_seconds)
        echo(f"{name}: mean {statistics.mean(scores):.4f}, seed ensemble {ensemble:.4f} ({seconds:.0f} s a seed)")
        rows.append((name, (changes, competition), scores, ensemble, seconds))
    default_mean = statistics.mean(rows[0][2])
    best = min(rows[1:], key=lambda r: statistics.mean(r[2]))
    margin = 2 * difference_error(best[2], rows[0][2])
    wins = statistics.mean(best[2]) < default_mean - margin
    lines = ["## Training and model variants of the network, on the tuning window", "",
             f"Command: `{command_line()}`", "", *environment(), "",
             f"- Tuning window: {describe(frame, tuning)}; models trained on {describe(frame, train)}; the reported "
             "window is not read",
             f"- Rule (fixed before the run): a variant replaces the default only if its mean over seeds "
             f"{', '.join(map(str, args.seeds))} is lower than the default's by more than twice the standard error of the difference", "",
             "| variant | change | RMSPE per seed | mean | seed ensemble | seconds a seed |",
             "|---|---|---|---|---|---|"]
    for name, (changes, competition), scores, ensemble, seconds in rows:
        keys = describe_change(changes, competition)
        lines.append(f"| {name} | {keys} | {', '.join(f'{s:.4f}' for s in scores)} | {statistics.mean(scores):.4f} | "
                     f"{ensemble:.4f} | {seconds:.0f} |")
    verdict = (f"`{best[0]}` wins ({statistics.mean(best[2]):.4f} against {default_mean:.4f}, by more than "
               f"{margin:.4f})" if wins else
               f"no variant beats the default by more than twice the standard error (the best, `{best[0]}`, "
               f"{statistics.mean(best[2]):.4f} against {default_mean:.4f}, needed {margin:.4f} lower): the "
               "default stays")
    lines += ["", f"Result: {verdict}."]
    section = "\n".join(lines) + "\n"
    print(section)
    write_section(args.out, "bench/rossmann_variants.py", section)


if __name__ == "__main__":
    main()
