"""Options shared by several `harness` commands (click only: cheap to import).

Paths are plain strings here: the harness checks them itself, so a wrong one is one `error:` line
naming it (click's own checks print a usage block instead).
"""
import click

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
