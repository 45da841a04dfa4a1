"""The package's architecture, read from its imports: each folder a layer, imports only downwards,
and TensorFlow only where a model is built or trained."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

from whaleid.code_digest import package_files

PACKAGE = REPO / "workflow_scripts" / "whaleid"
# The layers, lowest first: a module may import its own folder's modules and those of the layers
# below, never a layer above nor another folder of its own layer.
LAYERS = [
    {"vocabulary", "code_digest", "reproducibility"},
    {"settings"},
    {"io"},
    {"data", "evaluation", "demo"},
    {"identification", "learning"},
    {"methods"},
    {"review", "report"},
]
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}
# Where a model is built or trained: the only modules that may import TensorFlow or Keras.
TENSORFLOW_PARTS = ("learning", "methods/classifier.py", "methods/metric_learning/model.py",
                    "methods/metric_learning/additions.py")


def part_of(relative: Path) -> str:
    """The folder (or top-level module) of a file of the package."""
    return relative.parts[0].removesuffix(".py")


def imported(path: Path) -> set[str]:
    """Every module `path` names in an import, at its top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import; the package imports by absolute names"
            names.add(node.module)
    return names


MODULES = sorted(path.relative_to(PACKAGE) for path in PACKAGE.rglob("*.py"))


def test_every_folder_of_the_package_is_in_a_layer():
    assert {part_of(module) for module in MODULES if module.name != "__init__.py" or len(module.parts) > 1} == set(
        LAYER_OF)


@pytest.mark.parametrize("module", [m for m in MODULES if len(m.parts) > 1 or m.name != "__init__.py"], ids=str)
def test_a_module_imports_only_its_own_folder_and_the_layers_below(module):
    source = part_of(module)
    for name in imported(PACKAGE / module):
        parts = name.split(".")
        if parts[0] != "whaleid" or len(parts) < 2:
            continue
        target = parts[1]
        assert target == source or LAYER_OF[target] < LAYER_OF[source], (
            f"{module} imports {name}: {target} is not below {source}")


def imports_tensorflow(path: Path) -> bool:
    return path.suffix == ".py" and any(name.split(".")[0] in ("tensorflow", "keras") for name in imported(path))


def test_tensorflow_is_imported_only_where_models_are_built():
    importing = {str(m) for m in MODULES if imports_tensorflow(PACKAGE / m)}
    assert importing  # the check below has something to find
    assert all(module.startswith(TENSORFLOW_PARTS) for module in importing), importing


@pytest.mark.parametrize("module", [m for m in MODULES if not str(m).startswith(TENSORFLOW_PARTS)
                                    and m.name != "__init__.py"], ids=str)
def test_a_module_outside_them_runs_no_tensorflow_through_what_it_imports(module):
    """Data, identification, evaluation, the review pages and the methods that need no network
    load without TensorFlow: nothing they import, however deep, imports it."""
    heavy = [str(path.relative_to(PACKAGE)) for path in package_files(PACKAGE / module, PACKAGE)
             if imports_tensorflow(path)]
    assert not heavy, f"{module} runs {heavy}, which import TensorFlow"
