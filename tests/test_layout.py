"""The layout the README promises, read from the source (imports as written, lazy
ones included; those under ``if TYPE_CHECKING:`` are annotations, not imports):

- ``bench`` imports nothing of ``plugins`` or ``kernels``; ``kernels`` nothing of
  ``plugins``; ``plugins`` only ``bench``'s public API (``from bench import ...``).
- ``bench``'s modules import one another without a cycle.
- The results layer (storing, showing, comparing, reporting, plotting) imports
  neither the suite nor the worker nor an executor: a run folder is read without them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS_LAYER = ["results", "tuned", "display", "compare", "report", "plot"]
RUNNING = {"suite", "suitefile", "sweep", "worker", "runner", "executors", "slurm"}


def _imports(path: Path) -> list[str]:
    """Modules ``path`` imports, skipping ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    names: list[str] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module in ("bench", "plugins", "kernels"):
                names += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def _bench_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in (ROOT / "bench").glob("*.py")}
    graph = {}
    for name in modules:
        deps = set()
        for imported in _imports(ROOT / "bench" / f"{name}.py"):
            parts = imported.split(".")
            if parts[0] == "bench" and len(parts) > 1 and parts[1] in modules:
                deps.add(parts[1])
        graph[name] = deps - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_bench_modules_import_one_another_without_a_cycle():
    assert _cycle(_bench_graph()) is None


@pytest.mark.parametrize("module", RESULTS_LAYER)
def test_the_results_layer_reads_runs_without_the_suite_or_the_worker(module):
    assert not _bench_graph()[module] & RUNNING


@pytest.mark.parametrize(
    ("package", "refused"),
    [("bench", ("plugins", "kernels")), ("kernels", ("plugins",))],
)
def test_a_lower_layer_imports_nothing_of_a_higher_one(package, refused):
    bad = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in _imports(path)
        if name.split(".")[0] in refused
    ]
    assert not bad


def test_plugins_use_only_the_public_api_of_bench():
    import bench

    bad = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "plugins").rglob("*.py"))
        for name in _imports(path)
        if name.startswith("bench.") and name.split(".", 1)[1] not in bench.__all__
    ]
    assert not bad


def test_loading_the_plugins_leaves_matplotlib_unimported():
    """Every worker and every ``bench`` command loads all plugins; matplotlib at their
    import cost each such process 0.4 s (of about 2.5 s). The figure modules import it
    where a figure is drawn."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from bench.testing import default_registry\n"
        "default_registry()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')[:3])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)  # fmt: skip
    assert out.stdout.strip() == "[]", out.stdout
