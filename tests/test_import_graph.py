"""The package's import graph (static, every ``import`` of every module, also those inside
functions) has no cycle between modules, and no two sub-packages import each other: the
layers go one way (basis -> nn -> models -> measurements, reports and commands above)."""

import ast
import collections
from pathlib import Path

import sesn

ROOT = Path(sesn.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = ("sesn", *p.relative_to(ROOT).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (``from pkg import sub`` is an edge to ``pkg.sub``)."""
    mods = _modules()
    edges: dict[str, set[str]] = collections.defaultdict(set)
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods]
                names = subs + ([node.module] if len(subs) < len(node.names) else [])
            else:
                continue
            edges[mod].update(n for n in names if n in mods and n != mod)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def _package(mod: str) -> str | None:
    parts = mod.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and (ROOT / parts[1]).is_dir() else None


def test_no_module_imports_itself_through_others():
    assert cycles(import_graph()) == []


def test_no_two_subpackages_import_each_other():
    pairs = collections.defaultdict(set)
    for a, bs in import_graph().items():
        for b in bs:
            pa, pb = _package(a), _package(b)
            if pa and pb and pa != pb:
                pairs[pa].add(pb)
    both = sorted({tuple(sorted((a, b))) for a in pairs for b in pairs[a] if a in pairs.get(b, ())})
    assert both == []


def test_the_checks_see_a_cycle():
    """The checker itself: a planted two-module cycle and a three-module one are found."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# the floors of the package, bottom up: a module imports only its own floor, those below, and
# the utilities (top-level modules any floor may use)
FLOORS = ("sesn.basis", "sesn.nn", "sesn.baselines", "sesn.models")
UTILITIES = {f"sesn.{m}" for m in ("errors", "io", "settings", "memtrack", "markdown", "provenance", "devices",
                                   "allocator", "transforms", "flops")} | {"sesn"}  # fmt: skip


def _floor(mod: str) -> int | None:
    return next((i for i, f in enumerate(FLOORS) if mod == f or mod.startswith(f + ".")), None)


def upward_imports(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) where a module of a floor imports a module of a floor above it, or
    a package module above all floors (reports, training, measurements, commands)."""
    out = []
    for a, bs in edges.items():
        fa = _floor(a)
        if fa is None:
            continue
        for b in bs:
            fb = _floor(b)
            if (fb > fa) if fb is not None else b not in UTILITIES:
                out.append((a, b))
    return sorted(out)


def test_no_floor_imports_one_above_it():
    """basis -> nn -> baselines -> models: the layers never import the models, the models never
    a report, a training loop or a command (sesn.memory, sesn.train, sesn.report, ...)."""
    assert upward_imports(import_graph()) == []
    assert upward_imports({"sesn.nn.x": {"sesn.models.y", "sesn.io"}}) == [("sesn.nn.x", "sesn.models.y")]
    assert upward_imports({"sesn.models.m": {"sesn.report.r"}}) == [("sesn.models.m", "sesn.report.r")]
    assert upward_imports({"sesn.baselines.b": {"sesn.memory", "sesn.transforms"}}) == [
        ("sesn.baselines.b", "sesn.memory")
    ]
