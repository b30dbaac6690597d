"""Options shared by several `harness` commands (click only: cheap to import).

Paths are plain strings here: the harness checks them itself, so a wrong one is one `error:` line
naming it (click's own checks print a usage block instead). Numbers are checked as they are parsed
(`Number`), with the same one line.
"""
import click

from harness.config.schema import Num
from harness.errors import HarnessError


class Number(click.ParamType):
    """A whole (kind=int) or finite (kind=float) number from low to high (None: unbounded), checked as
    the option is parsed; anything else is one `error:` line naming the option, the value and the range."""

    def __init__(self, kind=float, low=None, high=None):
        self.kind, self.low, self.high = kind, low, high
        self.rule = Num(low, high, whole=kind is int)  # the config keys' own check: finite, whole, in range
        self.name = "integer" if kind is int else "float"  # the metavar in --help

    def wanted(self) -> str:
        noun = "a whole number" if self.kind is int else "a finite number"
        if self.low is not None and self.high is not None:
            return f"{noun} from {self.low} to {self.high}"
        if self.low is not None:
            return f"{noun} of {self.low} or more"
        if self.high is not None:
            return f"{noun} of {self.high} or less"
        return noun

    def convert(self, value, param, ctx):
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            number = None
        if number is None or self.rule.problem("", number):
            raise HarnessError(f"{param.opts[0] if param else 'value'} {value}: give {self.wanted()}")
        return number


# numpy's and Optuna's seeds are 32-bit: 2**32 or more, or a negative seed, fails deep inside them.
seed_type = Number(int, 0, 2**32 - 1)

config_option = click.option("--config", "config_file", 
                             help="A competition config (TOML) instead of the built-in defaults.")
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="Override one config entry, e.g. --set train.lr=0.01 (repeatable).")
data_dir_option = click.option("--data-dir",
                               help="Read the competition files from here instead of the workspace copy.")


def pretrained_options(command):
    command = click.option("--no-pretrained", is_flag=True,
                           help="Shortcut for --set model.pretrained=false (random weights, no download).")(command)
    return click.option("--pretrained", "pretrained",
                        help="Start from these saved weights (the competition's pretrained_key, "
                             "e.g. a language model for imdb).")(command)


device_option = click.option("--device", default="auto", show_default=True,
                             help="auto (CUDA, else MPS, else CPU), cpu, cuda, cuda:1 or mps.")
