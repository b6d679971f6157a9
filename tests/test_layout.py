"""The package's layout is its design (cifar/__init__.py): folders by role, each importing only the floors below
it, no circle, and a page that reaches neither Albumentations nor the training loop."""

import ast
import subprocess
import sys

from tests.conftest import ROOT

# The floors, lowest first: a module may import its own floor and those below it, never one above.
FLOORS = [("cifar.files", "cifar.device", "cifar.dataset"), ("cifar.engine",), ("cifar.runs",), ("cifar.training",),
          ("cifar.measure",), ("cifar.page",), ("cifar.deploy",)]


def floor(module: str) -> int:
    return next(level for level, names in enumerate(FLOORS)
                if any(module == name or module.startswith(name + ".") for name in names))


def imports() -> dict:
    """{module: {the cifar modules it imports, at the top or inside a function}} for every module of the package."""
    found = {}
    for path in sorted((ROOT / "cifar").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("cifar."):
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names if alias.name.startswith("cifar.")}
        found[module] = names
    return found


def test_no_module_imports_a_floor_above_its_own():
    upward = [f"{module} -> {target}" for module, targets in imports().items() if module != "cifar"
              for target in targets if floor(target) > floor(module)]
    assert upward == []


def test_the_imports_have_no_circle():
    graph = imports()
    state = {}

    def visit(module, path):
        if state.get(module) == "open":
            raise AssertionError("import circle: " + " -> ".join(path + [module]))
        if state.get(module) != "done":
            state[module] = "open"
            for target in graph.get(module, ()):
                visit(target, path + [module])
            state[module] = "done"

    for module in graph:
        visit(module, [])


def test_the_page_reaches_neither_albumentations_nor_the_training_loop():
    """What `python app.py` loads to serve (the Space ships only what app.py imports: tests/test_space.py)."""
    loaded = subprocess.run([sys.executable, "-c", "import sys, app, cifar.page.layout; print(*sorted(sys.modules))"],
                            capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
    assert "cifar.page.layout" in loaded  # the check could see what it looks for
    assert [m for m in loaded if m.split(".")[0] == "albumentations" or m.startswith("cifar.training")] == []
