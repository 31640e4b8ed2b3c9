"""Imports run one way: entry points -> restoration / options / training loop -> models / data ->
networks / losses -> runtime -> util. util/ knows no model, dataset or option; runtime/ (how a
generator runs at test time) knows only util/."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("util", "runtime", "models", "restoration", "data", "options", "training", "scripts", "datasets")
ENTRY_POINTS = ("train", "test", "evaluate")

# Each layer and the layers it may import (its own included).
ALLOWED = {
    "util": {"util"},
    "runtime": {"runtime", "util"},
    "networks": {"networks", "util"},
    "models": {"models", "networks", "runtime", "util"},
    "data": {"data", "util"},
    "options": {"options", "models", "data", "runtime", "util"},
    "training": {"training", "models", "data", "runtime", "util"},
    # Restoring: the loader, the Restorer and test.py's loop; cli.py, test.py's command line, reads TestOptions.
    "restoration": {"restoration", "options", "models", "networks", "data", "runtime", "util"},
    "entry": {"entry", "restoration", "options", "training", "models", "data", "networks", "runtime", "util"},
}

# The one import allowed to run upwards: models/restorer.py keeps `from models.restorer import
# Restorer` working for users (deprecated) by importing restoration/ lazily, inside a module
# __getattr__, so importing models/ never imports restoration/.
LAZY_UPWARD_IMPORTS = {("models.restorer", "restoration.restorer")}


def layer_of(module: str) -> str | None:
    """The layer of a dotted module name of this repository; None for anything else."""
    top = module.split(".")[0]
    if module.startswith(("models.networks", "models.losses")):
        return "networks"
    if top in ("util", "runtime", "models", "data", "options", "training", "restoration"):
        return top
    if top in ("scripts", "datasets") or module in ENTRY_POINTS:
        return "entry"
    return None


def imported_modules(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in `source`, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            if node.module is None:  # from . import name: each name is a module
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    layer = layer_of(module)
    wrong = []
    for line, target in imported_modules(module, source, is_package):
        target_layer = layer_of(target)
        if target_layer is not None and target_layer not in ALLOWED[layer] \
                and (module, target) not in LAZY_UPWARD_IMPORTS:
            wrong.append(f"{module}:{line} ({layer}) imports {target} ({target_layer})")
    return wrong


def repository_modules() -> list[tuple[str, Path]]:
    paths = [REPO / f"{name}.py" for name in ENTRY_POINTS]
    for package in PACKAGES:
        paths += sorted((REPO / package).rglob("*.py"))
    modules = []
    for path in paths:
        parts = path.relative_to(REPO).with_suffix("").parts
        modules.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return modules


def test_every_import_runs_the_right_way():
    modules = repository_modules()
    assert len(modules) > 50 and all(layer_of(name) for name, _ in modules)
    wrong = [v for name, path in modules
             for v in violations(name, path.read_text(encoding="utf-8"), path.name == "__init__.py")]
    assert wrong == []


def test_the_check_sees_a_wrong_import_absolute_relative_or_inside_a_function():
    assert violations("util.helper", "from models import create_model\n") == [
        "util.helper:1 (util) imports models (models)"]
    assert violations("models.networks.heads", "from ..base_model import BaseModel\n") == [
        "models.networks.heads:1 (networks) imports models.base_model (models)"]
    assert violations("models.cut_model", "def f():\n    import options.train_options\n") == [
        "models.cut_model:2 (models) imports options.train_options (options)"]
    assert violations("data", "from . import base_dataset\nimport torch\n", is_package=True) == []
    assert violations("models.losses", "from .contrastive import EncoderNCE\n") == [
        "models.losses:1 (networks) imports models.contrastive (models)"]
    assert violations("runtime.backends", "from models.loading import first_line\n") == [
        "runtime.backends:1 (runtime) imports models.loading (models)"]
    assert violations("models.base_model", "from restoration import Restorer\n") == [
        "models.base_model:1 (models) imports restoration (restoration)"]
    lazy = "def __getattr__(name):\n    from restoration.restorer import Restorer\n"
    assert violations("models.restorer", lazy) == []


def test_importing_models_does_not_import_restoration_and_the_old_restorer_path_warns():
    """The one upward import (LAZY_UPWARD_IMPORTS) runs only when `Restorer` is asked for."""
    code = ("import sys, warnings\n"
            "import models.restorer, models.loading, models.base_model\n"
            "assert not [m for m in sys.modules if m.split('.')[0] == 'restoration'], 'restoration imported'\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    from models.restorer import Restorer\n"
            "import restoration\n"
            "assert Restorer is restoration.Restorer\n"
            "(warning,) = caught\n"
            "assert warning.category is DeprecationWarning\n"
            "assert 'from restoration import Restorer' in str(warning.message)\n")
    ran = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert ran.returncode == 0, ran.stderr


# datasets/prepare.py's steps: each imports only the steps before it.
PREPARE_STEPS = ("datasets.prepare_catalogue", "datasets.prepare_readers", "datasets.prepare_pairing",
                 "datasets.prepare_writer", "datasets.prepare")


def test_the_prepare_steps_import_only_earlier_steps():
    imports = {m: {t for _, t in imported_modules(m, (REPO / f"{m.replace('.', '/')}.py").read_text(encoding="utf-8"))}
               for m in PREPARE_STEPS}
    backwards = [f"{m} imports {t}" for i, m in enumerate(PREPARE_STEPS)
                 for t in sorted(imports[m] & set(PREPARE_STEPS[i + 1:]))]
    assert backwards == []
    assert all(PREPARE_STEPS[i - 1] in imports[m] for i, m in enumerate(PREPARE_STEPS) if i)  # a chain, not islands
