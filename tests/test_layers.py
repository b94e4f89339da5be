"""The package's layering: no import cycle between modules, and no import from a lower stage to a higher one.

Every `import` / `from` statement of every module counts, wherever it is (module level, inside functions,
under `if TYPE_CHECKING`): a lazy import is still a dependency. There is no exception list.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hf_detector"

# Lowest first (docs/architecture.md). A module may import its own stage and the stages before it.
STAGES = ["data", "runtime", "preprocessing", "models", "inference", "evaluation", "hub", "signals", "training",
          "app", "cli", ""]  # "" = hf_detector/__init__.py, the public face, on top


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `path` imports: `from . import x` names module `x` when it is one."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                       for alias in node.names]
        else:
            continue
        for target in targets:
            # the innermost package module the statement names (`a.b.c` of `import a.b.c.d` when d is no module)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target.startswith("hf_detector") and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imported_modules(name, path, known) for name, path in found.items()}


def stage(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_belongs_to_a_stage() -> None:
    unknown = sorted(name for name in modules() if stage(name) not in STAGES)
    assert not unknown, f"modules outside every stage of STAGES (add them to a stage package): {unknown}"


def test_no_import_cycle() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_lower_stages_never_import_higher_ones() -> None:
    wrong = [f"{name} ({stage(name) or 'hf_detector'}) imports {target} ({stage(target) or 'hf_detector'})"
             for name, targets in graph().items() for target in sorted(targets)
             if STAGES.index(stage(target)) > STAGES.index(stage(name))]
    assert not wrong, "imports from a lower stage to a higher one:\n" + "\n".join(wrong)


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "hf_detector" / "data" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from ..training import trainer\n    import hf_detector.hub.card\n")
    known = {"hf_detector.data.x", "hf_detector.training", "hf_detector.training.trainer", "hf_detector.hub.card"}
    assert imported_modules("hf_detector.data.x", module, known) == {"hf_detector.training.trainer",
                                                                     "hf_detector.hub.card"}
