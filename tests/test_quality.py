"""ruff and mypy run with the tests, so the one test command is also the quality gate."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_is_clean() -> None:
    if shutil.which("ruff") is None:
        pytest.fail("ruff is not installed; pip install -e '.[dev]'")
    res = _run("ruff", "check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict_is_clean() -> None:
    res = _run(sys.executable, "-m", "mypy")
    assert res.returncode == 0, res.stdout + res.stderr


# -- the house: rooms, and the arrows between them ----------------------------------------------
#
# docs/architecture.md ("The house") draws placer as rooms in five areas and the arrows (imports)
# between them; the tables below are that drawing, and these tests keep it true: an import the
# drawing has no arrow for fails, as does an arrow nothing uses any more, a room the drawing
# does not know, an arrow that points back up, and a page that says something else.

AREAS: dict[str, tuple[str, ...]] = {
    "front": ("placer", "__main__", "cli", "local", "report", "api"),
    "simulator": ("sim",),
    "plugins": ("placer_ray", "placer_k8s", "placer_s3", "placer_gcs"),
    "edges": ("controller", "executor", "live", "decisions", "journal", "journal_pg", "resolve",
              "backends", "storage", "filestore", "transfer", "secrets", "testing",
              "preflight", "tracking"),
    "core": (
        "scheduler", "queue", "limits", "online", "pricing", "optimizer", "explain",
        "cluster_spec", "schema",
        "loading", "policy", "catalog", "models", "tags", "yamlio", "units", "errors",
    ),
}
"""Rooms by area. ``placer`` is the package's own ``__init__`` (``import placer``); every other
name is a module or package under ``placer/``, or a backend under ``backends/``."""

AREA_ARROWS: dict[str, frozenset[str]] = {
    "front": frozenset({"simulator", "edges", "core"}),
    "simulator": frozenset({"core"}),
    "plugins": frozenset({"edges", "core"}),
    "edges": frozenset({"core"}),
    "core": frozenset(),
}
"""Which areas a room may import from, besides its own: only areas below it in :data:`AREAS`
(and in the drawing). The front reaches the plugins only through the ``placer.backends`` entry
points, never by an import."""

ALLOWED: dict[str, str] = {
    # front
    "placer": "api catalog errors executor explain journal loading models policy scheduler",
    "__main__": "cli",
    "cli": "backends catalog cluster_spec controller decisions errors executor explain journal "
           "~live loading local models placer policy ~preflight queue ~report resolve schema "
           "secrets ~sim ~tracking units yamlio",
    "report": "errors models placer sim",
    "api": "~backends ~catalog ~decisions errors executor journal loading models policy "
           "~preflight ~resolve ~scheduler units yamlio",
    "local": "backends catalog errors loading models placer preflight",
    # simulator
    "sim": "catalog errors models online optimizer policy pricing yamlio",
    # plugins
    "placer_ray": "backends cluster_spec errors models",
    "placer_k8s": "backends cluster_spec errors models",
    "placer_s3": "catalog errors models storage",
    "placer_gcs": "catalog errors models storage",
    # edges
    "controller": "errors executor journal models",
    "executor": "backends catalog decisions errors journal live models online policy pricing "
                "scheduler secrets",
    "live": "backends catalog errors models online optimizer policy pricing",
    "decisions": "errors explain journal models policy scheduler secrets",
    "journal": "errors journal_pg models policy secrets",
    "journal_pg": "errors",
    "resolve": "backends errors models storage",
    "backends": "catalog errors ~filestore journal models storage transfer",
    "storage": "errors tags",
    "filestore": "errors models storage",
    "transfer": "errors journal storage",
    "secrets": "",
    "preflight": "backends errors models secrets",
    "testing": "backends errors models storage",
    "tracking": "errors executor journal models",
    # core
    "scheduler": "catalog limits models optimizer policy pricing units",
    "queue": "errors models",
    "limits": "models policy pricing",
    "online": "optimizer pricing",
    "pricing": "catalog models optimizer",
    "optimizer": "errors",
    "explain": "models units",
    "cluster_spec": "errors models",
    "schema": "models policy",
    "loading": "catalog errors models yamlio",
    "policy": "catalog errors models tags yamlio",
    "catalog": "errors models yamlio",
    "models": "errors tags units",
    "tags": "",
    "yamlio": "errors",
    "units": "",
    "errors": "",
}
"""Room → the rooms it imports; ``~room``: only inside a function (``import placer.cli`` loads
neither the simulator nor the report)."""


def _arrows() -> dict[tuple[str, str], bool]:
    """(from, to) → whether the import must be inside a function."""
    return {(room, to.lstrip("~")): to.startswith("~")
            for room, tos in ALLOWED.items() for to in tos.split()}


def _area(room: str) -> str:
    return next(area for area, rooms in AREAS.items() if room in rooms)


def _module_name(rel: str) -> str:
    parts = rel.removeprefix("backends/").removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, rel: str) -> list[tuple[str, int, bool]]:
    """``(module, line, inside a function)`` for every import in ``source`` (the file ``rel``,
    relative to the repository): ``import a.b``, ``from a import b`` (as ``a.b``), relative
    imports resolved, and ``importlib.import_module("a.b")`` with a literal name."""
    import ast

    package = _module_name(rel).split(".")
    if not rel.endswith("__init__.py"):
        package = package[:-1]
    out: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, inside) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    up = package[: len(package) - child.level + 1]
                    base = ".".join([*up, base] if base else up)
                out.extend((f"{base}.{a.name}", child.lineno, inside) for a in child.names)
            elif (
                isinstance(child, ast.Call)
                and getattr(child.func, "attr", getattr(child.func, "id", None)) == "import_module"
                and child.args
                and isinstance(child.args[0], ast.Constant)
                and isinstance(child.args[0].value, str)
            ):
                out.append((child.args[0].value, child.lineno, inside))
            visit(child, inside)

    visit(ast.parse(source), False)
    return out


def _is(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def room_of_file(rel: str) -> str:
    parts = rel.split("/")
    if parts[0] == "backends":
        return parts[1]
    return "placer" if parts[1] == "__init__.py" else parts[1].removesuffix(".py")


def room_of_module(module: str) -> str | None:
    """The room an imported module is in; None outside the house (the standard library, an
    SDK). ``placer.__version__`` and the like are the facade's."""
    parts = module.split(".")
    if parts[0] == "placer":
        rooms = {r for area in AREAS.values() for r in area}
        return parts[1] if len(parts) > 1 and parts[1] in rooms else "placer"
    return parts[0] if parts[0] in AREAS["plugins"] else None


def house_problems(files: dict[str, str], *, complete: bool = False) -> list[str]:
    """Imports in ``{relative path: source}`` that the drawing has no arrow for, or that are
    not inside a function where the arrow says so; with ``complete`` (the whole tree), also
    the arrows nothing uses."""
    arrows = _arrows()
    used: set[tuple[str, str]] = set()
    problems: dict[tuple[str, int], str] = {}  # one per import statement
    for rel, source in sorted(files.items()):
        here = room_of_file(rel)
        for module, line, inside in imported_modules(source, rel):
            there = room_of_module(module)
            if there is None or there == here or (rel, line) in problems:
                continue
            arrow = (here, there)
            if arrow not in arrows:
                problems[(rel, line)] = (f"{rel}:{line}: {here} ({_area(here)}) imports {module}"
                                         f" ({there}, {_area(there)}): no such arrow")
            elif arrows[arrow] and not inside:
                problems[(rel, line)] = (f"{rel}:{line}: {here} imports {there} at module "
                                         "level; only inside a function")
            else:
                used.add(arrow)
    out = list(problems.values())
    if complete:
        out += [f"the drawing's arrow {a} -> {b} is used by no import"
                for a, b in sorted(set(arrows) - used)]
    return out


def _tree() -> dict[str, str]:
    paths = [*(ROOT / "placer").rglob("*.py"), *(ROOT / "backends").glob("*/**/*.py")]
    return {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in paths}


def test_the_house_drawing_is_what_the_code_does() -> None:
    files = _tree()
    assert {room_of_file(rel) for rel in files} == {r for area in AREAS.values() for r in area}
    assert house_problems(files, complete=True) == []


def test_every_arrow_points_one_way() -> None:
    """Between areas, arrows go down the drawing only; within the house, no import cycle."""
    arrows = _arrows()
    assert set(ALLOWED) == {r for area in AREAS.values() for r in area}
    sideways = [(a, b) for a, b in arrows
                if _area(a) != _area(b) and _area(b) not in AREA_ARROWS[_area(a)]]
    assert sideways == []
    order: list[str] = []  # rooms whose every arrow leads to a room already listed
    left = set(ALLOWED)
    while left:
        ready = sorted(r for r in left if all(b in order for a, b in arrows if a == r))
        assert ready, f"an import cycle among {sorted(left)}"
        order += ready
        left -= set(ready)
    areas = list(AREAS)
    assert all(areas.index(b) > areas.index(a) for a, bs in AREA_ARROWS.items() for b in bs)


def test_the_drawing_in_the_docs_is_this_one() -> None:
    """docs/architecture.md's table of rooms is :data:`AREAS` and :data:`ALLOWED`."""
    import re

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    house = text.partition("\n## The house\n")[2].partition("\n## ")[0]
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (.*?) \|$", house, re.MULTILINE)
    assert rows, "docs/architecture.md has no table of rooms"
    items = {room: [i.strip() for i in imports.split(",") if i.strip() != "nothing"]
             for room, _, imports in rows}
    doc = {room: (area, " ".join(sorted(("~" if i.startswith("⇢") else "") + i.strip("⇢ `")
                                        for i in items[room])))
           for room, area, _ in rows}
    here = {room: (_area(room), " ".join(sorted(tos.split()))) for room, tos in ALLOWED.items()}
    assert doc == here


@pytest.mark.parametrize(
    ("rel", "source", "found"),
    [
        # the core imports neither the executor, the command line nor the simulator
        ("placer/scheduler.py", "from placer.executor import Run\n", "no such arrow"),
        ("placer/policy/_evaluate.py", "from placer import cli\n", "no such arrow"),
        ("placer/scheduler.py", "from placer.sim.cloud import CloudModel\n", "no such arrow"),
        ("placer/scheduler.py", "import placer.sim\n", "no such arrow"),
        ("placer/scheduler.py", "from placer import sim\n", "no such arrow"),
        ("placer/policy/_evaluate.py", "from ..sim import engine\n", "no such arrow"),
        ("placer/explain.py", "def f():\n    from placer.sim import bench\n", "no such arrow"),
        ("placer/explain.py", "importlib.import_module('placer.sim.bench')\n", "no such arrow"),
        ("placer/pricing.py", "from placer.journal import Journal\n", "no such arrow"),
        ("placer/online.py", "from placer.sim.jobs import SimJob\n", "no such arrow"),
        # the model does not import its presentation
        ("placer/models/_plan.py", "def f():\n    from placer.explain import x\n",
         "no such arrow"),
        # the simulator imports only the core
        ("placer/sim/bench.py", "from placer.report import rich_table\n", "no such arrow"),
        ("placer/sim/bench.py", "from placer.executor import submit\n", "no such arrow"),
        # no backend imports another, and placer imports none
        ("backends/placer_ray/_backend.py", "import placer_k8s\n", "no such arrow"),
        ("backends/placer_gcs/_gcs.py", "from placer_s3._s3 import S3Resolver\n",
         "no such arrow"),
        ("placer/backends.py", "import placer_ray\n", "no such arrow"),
        ("placer/cli.py", "def f():\n    from placer_k8s import x\n", "no such arrow"),
        # the command line loads the simulator and the report only when a command needs them
        ("placer/cli.py", "from placer.sim.bench import run_benchmark\n", "module level"),
        ("placer/cli.py", "def bench():\n    from placer.sim.bench import run\n", None),
        ("placer/sim/engine/_simulator.py", "from placer.sim.cloud import CloudModel\n", None),
        ("placer/online.py", "from placer.pricing import Quote\n", None),
        ("placer/report/_files.py", "from placer.sim.bench import Row\n", None),
        ("backends/placer_ray/_cluster.py", "from placer.cluster_spec import x\n", None),
    ],
)
def test_the_import_rules_catch_a_new_arrow(rel: str, source: str, found: str | None) -> None:
    problems = house_problems({rel: source})
    if found is None:
        assert problems == []
    else:
        assert len(problems) == 1 and found in problems[0], problems


# -- privacy: a package's API is its __init__; its _modules are its own ------------------------

TOOLKITS = frozenset({"placer", "placer.sim"})
"""Packages whose public modules are each an API of their own (``placer.pricing``,
``placer.sim.scenario``, ...). Every other package is one API: its ``__init__``, with the
implementation in ``_modules``."""


def privacy_problems(files: dict[str, str]) -> list[str]:
    """Imports of a ``_module`` from outside its package, in ``{relative path: source}``."""
    out = []
    for rel, source in sorted(files.items()):
        me = _module_name(rel)
        for module, line, _ in imported_modules(source, rel):
            parts = module.split(".")
            for i, part in enumerate(parts[1:], start=1):
                owner = ".".join(parts[:i])
                if part.startswith("_") and not part.startswith("__") and not _is(me, owner):
                    out.append(f"{rel}:{line}: imports {module}, private to {owner}")
                    break
    return out


def test_private_modules_are_imported_only_inside_their_package() -> None:
    files = _tree()
    files.update({p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8")
                  for p in (ROOT / "benchmarks").glob("*.py")})
    assert privacy_problems(files) == []


def test_packages_keep_their_implementation_in_private_modules() -> None:
    public = []
    inits = [*(ROOT / "placer").rglob("__init__.py"), *(ROOT / "backends").glob("*/__init__.py")]
    for init in inits:
        package = _module_name(init.relative_to(ROOT).as_posix())
        if package in TOOLKITS:
            continue
        public += [f"{package}.{p.stem}" for p in init.parent.iterdir()
                   if (p.suffix == ".py" or (p / "__init__.py").exists())
                   and not p.name.startswith("_")]
    assert public == []


@pytest.mark.parametrize(
    ("rel", "source", "bad"),
    [
        ("placer/journal.py", "from placer.models._base import Model\n", True),
        ("placer/executor/_status.py", "from placer.models._base import Model\n", True),
        ("placer/backends.py", "def f():\n    from placer.catalog._inventory import x\n", True),
        ("benchmarks/x.py", "from placer.sim.engine._queues import Pool\n", True),
        ("placer/models/_site.py", "from placer.models._base import Model\n", False),
        ("placer/sim/engine/_cloud.py", "from placer.sim.engine._data import Data\n", False),
        ("backends/placer_ray/__init__.py", "from placer_ray._backend import NAME\n", False),
        ("placer/journal.py", "from placer.models import Model\n", False),
    ],
)
def test_the_privacy_rule_catches_a_private_import(rel: str, source: str, bad: bool) -> None:
    assert bool(privacy_problems({rel: source})) is bad


def test_importing_placer_and_the_seams_loads_no_simulator() -> None:
    """Nor does the command line's module (``placer bench`` loads it, and the report, when it
    runs), and the simulator itself loads neither the report, rich, matplotlib nor Ray."""
    code = (
        "import sys, placer, placer.pricing, placer.online, placer.scheduler, placer.cli;"
        "print(sorted(m for m in sys.modules if m.startswith(('placer.sim', 'placer.report'))))"
    )
    res = _run(sys.executable, "-c", code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    code = (
        "import sys, placer.sim, placer.sim.bench, placer.sim.scenario;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'matplotlib', 'ray'})"
        " + sorted(m for m in sys.modules if m.startswith('placer.report')))"
    )
    res = _run(sys.executable, "-c", code)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_the_strategies_see_the_world_through_the_core_seam_only() -> None:
    """Baselines and placer's strategy import no other part of the simulator: they implement
    ``placer.online.Strategy`` against ``ClusterView`` and would run unchanged on a live view."""
    for rel in ("placer/sim/baselines.py", "placer/sim/placer_strategy.py"):
        source = (ROOT / rel).read_text(encoding="utf-8")
        sim = [m for m, _, _ in imported_modules(source, rel) if _is(m, "placer.sim")]
        assert sim == [], (rel, sim)
