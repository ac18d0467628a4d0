"""The layout DESIGN.md describes holds: no import cycles between nasorch's modules, the pure
packages import none of the others, every private name of a dependency goes through
orchestrator/compat.py, and DESIGN.md lists every module."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("orchestrator", "search_spaces", "trainables")


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """First-party modules a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a import b` imports the module a.b where there is one, else a name of a.
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                for a in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    # A package's __init__ is imported with any of its modules; it is not an edge of its own.
    return {m: {i for i in imports(p, known) if i != m} for m, p in mods.items()}


def test_no_import_cycles():
    edges = graph()
    # Importing `a.b` runs `a/__init__`: the registries in __init__ files import their members,
    # which is not a cycle of code, so edges into a package's own __init__ are left out.
    edges = {m: {i for i in deps if not m.startswith(i + ".")} for m, deps in edges.items()}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n) :] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


# The layers, lowest first (DESIGN.md, "Layers"): a module may import its own layer's and lower
# layers' modules, never a higher layer's. A unit is a top-level package or a package or module
# directly under orchestrator/; every unit stands in exactly one layer.
LAYERS = (
    ("search_spaces",),
    ("trainables",),
    ("orchestrator.core", "orchestrator.compat"),
    ("orchestrator.config",),
    ("orchestrator.resumable",),
    ("orchestrator.searchers", "orchestrator.schedulers"),
    ("orchestrator.warm_start",),
    ("orchestrator.reporting",),  # above the searchers: a searcher hands data, never draws
    ("orchestrator.tracking",),
    ("orchestrator.execution",),
    ("orchestrator.simulation",),
    ("orchestrator.trial",),
    ("orchestrator.commands",),
    ("orchestrator",),  # the public API (__init__): run, resume, load_config
)  # fmt: skip
LEVEL = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "orchestrator" else parts[0]


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{m} -> {d}" for m, deps in edges.items() for d in deps if LEVEL[unit(d)] > LEVEL[unit(m)]
    )


def package_cycles(edges: dict[str, set[str]]) -> list[str]:
    """Units that import each other, through any of their modules (a cycle between packages
    the module-level check cannot see: a.x -> b.y and b.z -> a.w)."""
    reach = {u: set() for u in LEVEL}
    for m, deps in edges.items():
        reach[unit(m)] |= {unit(d) for d in deps} - {unit(m)}
    changed = True
    while changed:
        changed = False
        for out in reach.values():
            more = set().union(*(reach[v] for v in out)) - out if out else set()
            if more:
                out |= more
                changed = True
    return sorted(u for u, out in reach.items() if u in out)


def test_every_unit_has_a_layer():
    units = {unit(m) for m in graph()}
    assert not units - set(LEVEL), f"not in LAYERS: {sorted(units - set(LEVEL))}"
    assert not set(LEVEL) - units, f"LAYERS names what does not exist: {set(LEVEL) - units}"


def test_no_import_runs_up_the_layers_and_no_package_cycle():
    edges = graph()
    assert not upward_imports(edges), "upward imports:\n" + "\n".join(upward_imports(edges))
    assert not package_cycles(edges), f"packages in a cycle: {package_cycles(edges)}"


def test_the_layer_check_can_fail():
    """A deliberate upward import and a deliberate cycle between two packages are found."""
    edges = graph()
    bad = {**edges, "orchestrator.core.gate": {"orchestrator.execution.runner"}}
    assert upward_imports(bad) == ["orchestrator.core.gate -> orchestrator.execution.runner"]
    cycle = {
        "orchestrator.searchers.x": {"orchestrator.schedulers.y"},
        "orchestrator.schedulers.z": {"orchestrator.searchers.w"},
    }
    assert package_cycles(cycle) == ["orchestrator.schedulers", "orchestrator.searchers"]


def test_pure_packages_import_none_of_the_others():
    edges = graph()
    for module, deps in edges.items():
        if module.startswith("search_spaces"):
            assert not {d for d in deps if d.startswith(("orchestrator", "trainables"))}, module
        if module.startswith("trainables"):
            assert not {d for d in deps if d.startswith("orchestrator")}, module
        if module.startswith("orchestrator.core"):
            assert not {d for d in deps if d.startswith("orchestrator") and ".core" not in d}, (
                module
            )


PRIVATE = (
    # a private module or name reached through a dotted path: ray._private, optuna.samplers._tpe
    re.compile(r"\b(ray|mlflow|optuna)(\.[A-Za-z0-9_]+)*\._[A-Za-z]\w*"),
    # a private name imported from them: from ray.tune.schedulers.hyperband import _Bracket
    re.compile(r"^\s*from (ray|mlflow|optuna)[\w.]* import .*\b_[A-Za-z]\w*"),
    # private names nasorch has needed (arguments and attributes that no path above shows)
    re.compile(
        r"\b(_node_ip_address|_rungs|_trial_info|_local_tuner|_tracking_client|_create_bracket"
        r"|_exploit|_get_new_config|_trial_state|_lazy_random_state|_ReplayTrial|_live_trials"
        r"|_cumul_r|_time_attr|_validate_batch_log_data)\b"
    ),
)
# Beyond the packages: the tests and benchmarks go through compat as well (test_compat probes).
OTHER_FILES = ("tests", "benchmarks", "examples")


def test_private_names_only_in_compat():
    files = [p for m, p in modules().items() if m != "orchestrator.compat"]
    for folder in OTHER_FILES:
        files += [p for p in (ROOT / folder).rglob("*.py") if p.name != "test_compat.py"]
    offenders = []
    for path in files:
        if path.resolve() == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if any(p.search(code) for p in PRIVATE):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def listed_in_design() -> set[str]:
    """The files of the tree in DESIGN.md's "Where things live" (two spaces per level)."""
    design = (ROOT / "docs" / "DESIGN.md").read_text()
    block = design.split("## Where things live", 1)[1].split("```", 2)[1]
    listed, stack = set(), []
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        entry = line.split()[0]
        stack = stack[:depth]
        if entry.endswith("/"):
            stack.append(entry.rstrip("/"))
        else:
            listed.add("/".join([*stack, entry]))
    return listed


def _only_a_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def test_design_lists_every_module():
    listed = listed_in_design()
    missing = [
        str(path.relative_to(ROOT))
        for path in modules().values()
        if str(path.relative_to(ROOT)) not in listed and not _only_a_docstring(path)
    ]
    assert not missing, f"docs/DESIGN.md does not list: {missing}"
    gone = [p for p in listed if p.endswith(".py") and not (ROOT / p).is_file()]
    assert not gone, f"docs/DESIGN.md lists files that do not exist: {gone}"


def test_mlflow_tag_names_and_trial_names_live_in_tags():
    literal = re.compile(r"""["'`]nasorch\.[a-z_.]+["'`]|t\{[^}]*:03d\}""")
    offenders = []
    for module, path in modules().items():
        if module == "orchestrator.core.tags":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if literal.search(code) and "CANDIDATE_ATTR" not in code:  # an Optuna attr
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_no_public_name_is_also_a_subpackage():
    """Importing `orchestrator.<x>` sets the attribute `x` on the package: a subpackage named
    like a public function (`resume`) would replace it once anything imported the subpackage."""
    import orchestrator

    for package in PACKAGES:
        exports = getattr(__import__(package), "__all__", [])
        children = {p.stem if p.suffix else p.name for p in (ROOT / package).iterdir()}
        assert not set(exports) & children, package
    import orchestrator.execution.runner  # noqa: F401  (imports every subpackage it uses)

    assert callable(orchestrator.resume) and callable(orchestrator.run)


# ---- private names of foreign modules, found in the syntax -------------------------------------
FIRST_PARTY = {*PACKAGES, "tests", "benchmarks", "examples"}
# Public functions whose names start with an underscore by their library's convention.
PUBLIC_UNDERSCORED = {"os._exit", "sys._getframe"}


def foreign_private_uses(source: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every private name of a foreign (not first-party) module: a
    `_name` imported from one, or an attribute path from an imported name that reaches a
    `_name` (`atexit._run_exitfuncs`, `nn.modules.conv._ConvNd`, a base class among them)."""
    tree = ast.parse(source)
    roots: dict[str, str] = {}  # local name -> the foreign dotted name it stands for
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] not in FIRST_PARTY:
                    local = a.asname or a.name.split(".")[0]
                    roots[local] = a.name if a.asname else local
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in FIRST_PARTY:
                continue
            for a in node.names:
                roots[a.asname or a.name] = f"{node.module}.{a.name}"
                if _private(a.name):
                    found.append((node.lineno, f"{node.module}.{a.name}"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain, base = [node.attr], node.value
        while isinstance(base, ast.Attribute):
            chain.append(base.attr)
            base = base.value
        if isinstance(base, ast.Name) and base.id in roots and _private(node.attr):
            dotted = ".".join([roots[base.id], *reversed(chain)])
            if dotted not in PUBLIC_UNDERSCORED:
                found.append((node.lineno, dotted))
    return sorted(set(found))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_foreign_private_names_are_found_in_the_syntax():
    """The scan below finds what a list of names would miss; proven on known cases."""
    source = (
        "import atexit\n"
        "import torch.nn as nn\n"
        "from torch import nn as tnn\n"
        "from ray.tune.schedulers.hyperband import _Bracket\n"
        "from orchestrator import compat\n"
        "import os\n"
        "atexit._run_exitfuncs()\n"
        "class C(tnn.modules.conv._ConvNd): pass\n"
        "x = nn.Conv2d\n"
        "compat._private_helper()\n"
        "os._exit(0)\n"
        "self._state = 1\n"
    )
    assert [name for _, name in foreign_private_uses(source)] == [
        "ray.tune.schedulers.hyperband._Bracket",
        "atexit._run_exitfuncs",
        "torch.nn.modules.conv._ConvNd",
    ]


def test_no_foreign_private_name_outside_compat():
    files = [p for m, p in modules().items() if m != "orchestrator.compat"]
    for folder in OTHER_FILES:
        files += [p for p in (ROOT / folder).rglob("*.py") if p.name != "test_compat.py"]
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in files
        if path.resolve() != Path(__file__).resolve()
        for line, name in foreign_private_uses(path.read_text())
    ]
    assert not offenders, "\n".join(offenders)
