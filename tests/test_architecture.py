"""The house rules, checked on the source: no import circles, no private names borrowed across modules,
and data flowing one way (CLI -> runner -> competition/learner -> data/models)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "plugins", "competitions")


def module_files() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = module_files()


def owner(name: str) -> str | None:
    """The project module a dotted import name lands in (a package, or a module inside it)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> list[tuple[str, str]]:
    """(imported project module, imported name or "") for every import in ``module``, at any depth
    (imports inside functions count: they form circles too), except those under ``if TYPE_CHECKING``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for n in ast.walk(node)}
    found = []
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(owner(a.name), "") for a in node.names if owner(a.name)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                target = owner(f"{base}.{alias.name}") if f"{base}.{alias.name}" in MODULES else owner(base)
                if target:
                    found.append((target, alias.name))
    return [(target, name) for target, name in found if target != module]


GRAPH = {module: {target for target, _ in imports(module)} for module in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_checker_sees_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    assert cycles(GRAPH) == []


def test_no_module_imports_a_private_name_from_another():
    borrowed = [(module, target, name) for module in MODULES for target, name in imports(module)
                if name.startswith("_") and not name.startswith("__")]
    assert borrowed == []


@pytest.mark.parametrize("lower, higher", [
    ("harness.models", "harness.train"),      # models are plain torch modules
    ("harness.models", "harness.runs.runner"),
    ("harness.data", "harness.train"),
    ("harness.data", "harness.runs.runner"),
    ("harness.train", "harness.runs.runner"),      # the trainer knows nothing of runs or competitions
    ("harness.train", "harness.host.competition"),
    ("harness.host.competition", "harness.runs.runner"),
    ("plugins", "harness.runs.runner"),            # plugins are called by the run flow, never call it
    ("harness", "plugins"),                   # the host finds plugins by name, never imports them
])
def test_data_flows_one_way(lower, higher):
    wrong = sorted((m, t) for m in MODULES if is_within(m, lower) for t in GRAPH[m] if is_within(t, higher)
                   and not is_within(t, lower))
    assert wrong == []


def test_only_the_cli_imports_the_cli():
    wrong = sorted((m, t) for m in MODULES if not is_within(m, "harness.cli") for t in GRAPH[m]
                   if is_within(t, "harness.cli"))
    assert wrong == []


def test_every_package_folder_is_installed_under_its_own_name():
    """plugins/ and competitions/ install as harness_plugins and harness_competitions (names no other
    distribution uses); pyproject.toml lists every package, so a new folder must be added there."""
    import tomllib

    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    install_name = {folder: name for name, folder in setuptools["package-dir"].items()}
    assert install_name == {"harness": "harness", "plugins": "harness_plugins", "competitions": "harness_competitions"}
    folders = sorted(".".join((install_name[p.parent.relative_to(ROOT).parts[0]],
                               *p.parent.relative_to(ROOT).parts[1:]))
                     for package in PACKAGES for p in (ROOT / package).rglob("__init__.py"))
    assert sorted(setuptools["packages"]) == folders
