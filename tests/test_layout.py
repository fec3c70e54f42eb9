"""The backend's layout holds: every import goes upstream (core <- render <- generate <- export <- reconstruct <-
service, the evaluation apart), the Cycles ground truth never imports the renderer it judges, and modules stay small."""

import ast
from pathlib import Path

import pytest

BACKEND = Path(__file__).resolve().parent.parent / "backend"
MAX_LINES = 450  # a longer module must say why in its first lines ("long because ...")

# package -> packages its modules may import from (relight_protocol, the wire protocol, is below all of them)
ALLOWED = {
    "core": {"core"},
    "render": {"core", "render"},  # the forward model: generate inverts it, so it must not import generate
    "generate": {"core", "render", "generate"},
    "export": {"core", "render", "export"},
    "reconstruct": {"core", "render", "generate", "export", "reconstruct"},  # multi-view G-buffers -> baked mesh
    "service": {"core", "render", "generate", "export", "reconstruct", "service"},
    "evaluate": {"core", "render", "generate", "export", "reconstruct", "service", "evaluate", "top"},
    "top": {"core", "render", "generate", "export", "reconstruct", "service", "evaluate", "top"},  # cli.py, demo.py
}
# inside generate/: the stages in the order the data flows; a stage imports only from itself and earlier stages
GENERATE_ORDER = ["segment", "geometry", "voxel", "visibility", "gaussians", "delight", "pipeline"]


def _modules():
    return sorted(p for p in BACKEND.rglob("*.py") if "data" not in p.parts)


def _dotted(path: Path) -> list[str]:
    rel = path.relative_to(BACKEND).with_suffix("")
    parts = list(rel.parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imports(path: Path) -> list[tuple[int, list[str]]]:
    """(line, target module path inside relight as parts) for every relight import, also inside functions."""
    tree = ast.parse(path.read_text())
    here = _dotted(path)
    pkg = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "relight":
                target = node.module.split(".")[1:]
            else:
                continue
            if node.level and not node.module:
                target = target + [node.names[0].name]  # `from . import x`: the module x
            out.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "relight":
                    out.append((node.lineno, a.name.split(".")[1:]))
    return out


def _package(parts: list[str]) -> str:
    return parts[0] if parts and parts[0] in ALLOWED else "top"


def test_every_import_goes_upstream():
    bad = []
    for path in _modules():
        src = _package(_dotted(path))
        for line, target in _imports(path):
            dst = _package(target)
            if target and target[0] == "__version__" or not target:
                continue
            if dst not in ALLOWED[src]:
                bad.append(f"{path.relative_to(BACKEND)}:{line} ({src}) imports {'.'.join(target)} ({dst})")
    assert not bad, "imports against the flow:\n" + "\n".join(bad)


def test_generate_stages_import_only_earlier_stages():
    bad = []
    for path in (BACKEND / "generate").rglob("*.py"):
        here = _dotted(path)
        if len(here) < 2:
            continue
        stage = here[1]
        for line, target in _imports(path):
            if len(target) >= 2 and target[0] == "generate" and target[1] in GENERATE_ORDER and stage in GENERATE_ORDER:
                if GENERATE_ORDER.index(target[1]) > GENERATE_ORDER.index(stage):
                    bad.append(f"{path.relative_to(BACKEND)}:{line} ({stage}) imports the later stage {target[1]}")
    assert not bad, "\n".join(bad)


def test_the_cycles_ground_truth_does_not_import_the_renderer():
    targets = [t for _, t in _imports(BACKEND / "evaluate" / "cycles_scenes.py")]
    assert not [t for t in targets if t and t[0] == "render"], targets


def _module_aliases(path: Path, tree) -> set[str]:
    """Names this file binds to relight modules (`from ..render import splat_native as sn`)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("relight")):
            for a in node.names:
                here = path.parent if node.level else BACKEND
                for _ in range(max(node.level - 1, 0)):
                    here = here.parent
                base = here.joinpath(*((node.module or "").split(".")[1:] if not node.level else (node.module or "").split("."))) \
                    if node.module else here  # fmt: skip
                if (base / f"{a.name}.py").exists() or (base / a.name / "__init__.py").exists():
                    names.add(a.asname or a.name)
    return names


def test_nothing_reaches_into_another_modules_private_names():
    bad = []
    for path in _modules():
        tree = ast.parse(path.read_text())
        aliases = _module_aliases(path, tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("relight")):
                for a in node.names:
                    if a.name.startswith("_") and a.name != "__version__":
                        bad.append(f"{path.relative_to(BACKEND)}:{node.lineno} imports {a.name}")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                    and node.attr.startswith("_") and not node.attr.startswith("__"):  # fmt: skip
                bad.append(f"{path.relative_to(BACKEND)}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(BACKEND)))
def test_modules_are_small_or_say_why(path):
    lines = path.read_text().splitlines()
    if len(lines) > MAX_LINES:
        head = " ".join(lines[:8]).lower()
        assert "long because" in head, f"{len(lines)} lines and no reason in its first lines"


def test_every_subpackage_says_what_it_holds_and_may_import():
    for init in BACKEND.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc) > 40 and "import" in doc.lower(), f"{init.relative_to(BACKEND)}: docstring must say what it holds and may import"
