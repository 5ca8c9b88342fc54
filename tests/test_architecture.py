"""The package's shape (ARCHITECTURE.md): subpackages in layers that import only from the
layers below, no import circles, no module reaching into another's private names, and an
``import companion`` that loads no heavy library."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
# bottom to top: a subpackage (or top-level module) imports only from lower layers
LAYERS = [
    {"datasets", "engine"},
    {"inference"},
    {"results"},
    {"compare", "lmm"},
    {"glmm", "nlmm", "gee", "inla", "spatial"},
    {"bayes", "power", "study", "classroom", "plots", "notebook"},
    {"__main__", "__init__"},
]
LAYER = {name: level for level, names in enumerate(LAYERS) for name in names}


def _modules() -> dict[str, Path]:
    return {".".join(path.relative_to(SOURCE).with_suffix("").parts): path
            for path in sorted((SOURCE / "companion").rglob("*.py"))}


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every companion import, wherever it stands."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] == "companion":
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names
                      if alias.name.split(".")[0] == "companion"]
    return found


def _unit(module: str) -> str:
    """The subpackage or top-level module a module belongs to (its layer's name)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _targets(module: str, names: list[str], modules: dict[str, Path]) -> list[str]:
    """The modules an import statement loads: ``from companion.x import y`` is the module
    ``companion.x.y`` when y is one, else ``companion.x`` (its ``__init__``)."""
    out = []
    for name in names or [None]:
        candidate = f"{module}.{name}" if name else module
        if candidate in modules:
            out.append(candidate)
        elif f"{module}.__init__" in modules:
            out.append(f"{module}.__init__")
        else:
            out.append(module)
    return out


def test_every_unit_has_a_layer():
    units = {_unit(m) for m in _modules()}
    assert not units - set(LAYER), f"add these to LAYERS: {sorted(units - set(LAYER))}"


def test_imports_go_down_the_layers():
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        for target, names, line in _imports(path):
            if target == "companion":  # the root's lazy names: only the root and __main__
                if LAYER[_unit(module)] < LAYER["__main__"]:
                    wrong.append(f"{module}:{line} imports {names} from companion itself")
                continue
            mine, theirs = _unit(module), _unit(target)
            if mine != theirs and LAYER[theirs] >= LAYER[mine]:
                wrong.append(f"{module}:{line} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_no_private_names_cross_modules():
    wrong = []
    for module, path in _modules().items():
        package = module.rsplit(".", 1)[0]
        for target, names, line in _imports(path):
            private = [n for n in names if n.startswith("_")]
            if private and target != module:
                wrong.append(f"{module}:{line} takes {private} from {target}")
            hidden = [part for part in target.split(".") if part.startswith("_")
                      and part not in ("__init__", "__main__")]
            if hidden and not target.startswith(package + "."):
                wrong.append(f"{module}:{line} imports the private module {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    modules = _modules()
    graph = {module: {t for target, names, _ in _imports(path)
                      for t in _targets(target, names, modules) if t != module}
             for module, path in modules.items()}
    circles, state = [], {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                circles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


HEAVY = ("statsmodels", "matplotlib", "pymc", "bambi", "pytensor", "arviz", "scipy",
         "sklearn", "dask")


def _loaded_after(code: str) -> list[str]:
    script = (f"import sys\n{code}\nimport json\n"
              f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_companion_loads_no_heavy_library():
    loaded = _loaded_after("import companion")
    assert not set(HEAVY) & set(loaded), set(HEAVY) & set(loaded)
    assert "numpy" not in loaded and "pandas" not in loaded


def test_loading_a_data_set_loads_no_model_library():
    loaded = set(_loaded_after("import companion\ncompanion.load_dataset('sleepstudy')"))
    assert not loaded & {"statsmodels", "matplotlib", "pymc", "bambi"}, loaded


@pytest.mark.parametrize("name", ["inla", "gee", "spatial", "study", "plots", "bayes",
                                  "engine", "lmm", "glmm", "nlmm", "inference", "compare"])
def test_subpackages_are_modules_not_functions(name):
    import types

    import companion

    assert isinstance(getattr(companion, name), types.ModuleType)


def test_fitters_and_constants_are_reachable():
    import companion

    assert callable(companion.lmer) and callable(companion.glmer)
    assert callable(companion.inla.inla)
    assert companion.inla.GAMMA_PRIOR == (1.0, 5e-05)
    assert set(companion.__all__) <= set(dir(companion))
    with pytest.raises(AttributeError, match="no attribute 'lmerr'"):
        companion.lmerr  # noqa: B018
