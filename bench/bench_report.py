"""What every benchmark result states, and how it reaches bench/results/.

A benchmark builds its Markdown section (its command, the date, the machine, the code it ran and its
tables), prints it and writes it into its results file between its own markers, atomically, so the
figures in the file are exactly what the command printed and other sections of the file are kept.
"""
from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from harness.workspace import write_text

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def command_line(argv: list[str] | None = None, executable: str | None = None) -> str:
    """The command as run from the repository root, e.g. ``.venv/bin/python bench/x.py --seeds 0``
    (the interpreter relative to the root when it lives there, else its full path)."""
    argv = list(sys.argv if argv is None else argv)
    return shlex.join([relative(executable or sys.executable), relative(argv[0]), *argv[1:]])


def relative(path: str) -> str:
    # The interpreter's path as called, not resolved: a venv's python is a link to the system one.
    full = Path(os.path.abspath(path))
    try:
        return str(full.relative_to(ROOT))
    except ValueError:
        return str(full)


def cpu_model() -> str:
    """The CPU's name, family and model numbers, and the vector instructions torch uses on it. A network's
    figures (not LightGBM's) differ between CPU models that all say "Intel(R) Xeon(R) Processor": torch picks
    other kernels (AMX, AVX-512), whose float rounding differs, and training amplifies that."""
    import torch

    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown"
    numbers = f"family {fields['cpu family']} model {fields['model']}, " if "model" in fields else ""
    amx = ", AMX" if "amx_tile" in fields.get("flags", "").split() else ""  # oneDNN's matrix units
    return f"{name} ({numbers}torch kernels {torch.backends.cpu.get_cpu_capability()}{amx})"


def git_state(paths=("harness", "plugins", "competitions", "bench")) -> str:
    """The commit, and how many files under each of ``paths`` differ from it (figures come from the
    working tree, which may hold changes not yet committed)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.rstrip("\n")

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    changed = [line[3:] for line in git("status", "--porcelain", "--", *paths).splitlines()]
    if not changed:
        return f"{commit}, no uncommitted changes under {', '.join(p + '/' for p in paths)}"
    counts = {p: sum(f.startswith(p + "/") for f in changed) for p in paths}
    listed = ", ".join(f"{p}/ {n}" for p, n in counts.items() if n)
    return f"{commit} plus uncommitted changes to {len(changed)} file(s) ({listed})"


def environment(extra: dict | None = None) -> list[str]:
    """Markdown bullet lines: date, machine, code, library versions."""
    import numpy
    import torch

    versions = f"Python {platform.python_version()}, torch {torch.__version__} (threads: {torch.get_num_threads()}), " \
               f"numpy {numpy.__version__}"
    for name, value in (extra or {}).items():
        versions += f", {name} {value}"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        f"- Date: {time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime())} (`date -u`)",
        f"- Machine: `nproc` = {os.cpu_count()}, `uname -m` = {platform.machine()}, CPU {cpu_model()}; "
        f"load average at the start {load}",
        f"- Code: harness commit {git_state()}",
        f"- Software: {versions}",
    ]


def markers(key: str) -> tuple[str, str]:
    return f"<!-- begin {key} (written by the script; rerun it to update) -->", f"<!-- end {key} -->"


def replace_section(text: str, key: str, section: str) -> str:
    """``text`` with the part between ``key``'s markers replaced by ``section`` (appended if absent)."""
    begin, end = markers(key)
    block = f"{begin}\n{section.rstrip()}\n{end}"
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        return text.rstrip() + "\n\n" + block + "\n"
    return text[:start] + block + text[stop + len(end):]


def write_section(path: Path, key: str, section: str) -> None:
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    write_text(path, replace_section(old, key, section))
