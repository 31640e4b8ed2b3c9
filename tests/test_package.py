"""pyproject.toml: the repository installs as a package that keeps its layout; scripts run as
modules without editing sys.path; the console commands work from any folder."""
from __future__ import annotations

import ast
import configparser
import importlib
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import restoration.cli

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("util", "runtime", "models", "restoration", "data", "options", "training", "datasets", "scripts")
PACKAGE_DATA = ("util/data/niqe_pris_params.npz",)
COMMANDS = {"dcdgan-train": "train:main", "dcdgan-test": "restoration.cli:main",
            "dcdgan-evaluate": "evaluate:main"}
SYS_PATH_EDIT = re.compile(r"sys\.path\.(insert|append|extend)\(|sys\.path\s*(\+?=|\[[^]]*\]\s*=)")
SCRIPTS = sorted(p.stem for p in (REPO / "scripts").glob("*.py") if p.stem != "__init__")


def _is_code_folder(path: Path) -> bool:
    return path.is_dir() and path.name != "__pycache__" and (path / "__init__.py").is_file()


def _package_sources() -> list[str]:
    """Every .py file of the packages, as a wheel names it (generated data folders left out)."""
    found = []
    for package in PACKAGES:
        folders = [REPO / package]
        while folders:
            folder = folders.pop()
            found += [p.relative_to(REPO).as_posix() for p in folder.glob("*.py")]
            folders += [p for p in folder.iterdir() if _is_code_folder(p)]
    return sorted(found)


def _source_tree(dest: Path) -> Path:
    """What a build reads, copied, so that building writes nothing into the checkout."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "train.py", "test.py", "evaluate.py", *_package_sources(),
                 *PACKAGE_DATA):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, dest / name)
    return dest


def _run(*argv: str | Path, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "OMP_NUM_THREADS": "1"}  # no PYTHONPATH
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_wheel_holds_the_layout_and_the_commands(tmp_path):
    source = _source_tree(tmp_path / "src")
    built = _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                 "-w", tmp_path / "dist", source, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("dcdgan-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        commands = configparser.ConfigParser()
        commands.read_string(zf.read(entry_points).decode())

    assert {"train.py", "evaluate.py", *_package_sources(), *PACKAGE_DATA} <= names
    # test.py stays out (pyproject.toml says why), and so do the tests.
    assert "test.py" not in names and not [n for n in names if n.startswith("tests/")]
    assert dict(commands["console_scripts"]) == COMMANDS
    for target in COMMANDS.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_every_script_runs_as_a_module_from_the_repository(tmp_path):
    """python -m scripts.NAME --help, from the repository's root with nothing added to sys.path."""
    driver = (
        "import json, runpy, sys\n"
        "codes = {}\n"
        f"for name in {SCRIPTS!r}:\n"
        "    sys.argv = [name, '--help']\n"
        "    try:\n"
        "        runpy.run_module(f'scripts.{name}', run_name='__main__', alter_sys=True)\n"
        "        codes[name] = 'no exit'\n"
        "    except SystemExit as done:\n"
        "        codes[name] = done.code\n"
        "print(json.dumps(codes))\n"
    )
    ran = _run(sys.executable, "-c", driver, cwd=REPO)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.splitlines()[-1]) == dict.fromkeys(SCRIPTS, 0)
    assert ran.stdout.count("usage:") == len(SCRIPTS)


def _code_outside_tests() -> list[tuple[str, str]]:
    """(where, source) of the entry points, the packages and the notebooks' code cells."""
    paths = [REPO / f"{name}.py" for name in ("train", "test", "evaluate")]
    paths += [p for package in PACKAGES for p in sorted((REPO / package).rglob("*.py"))]
    code = [(str(p.relative_to(REPO)), p.read_text(encoding="utf-8")) for p in paths]
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        code += [(f"{notebook.name} cell {i}", "".join(c["source"])) for i, c in enumerate(cells)
                 if c["cell_type"] == "code"]
    return code


def test_scripts_and_notebooks_leave_sys_path_alone():
    sources = sorted((REPO / "scripts").glob("*.py")) + sorted((REPO / "datasets").glob("prepare*.py"))
    edits = [p.name for p in sources if SYS_PATH_EDIT.search(p.read_text(encoding="utf-8"))]
    edits += [where for where, source in _code_outside_tests() if ".ipynb" in where and SYS_PATH_EDIT.search(source)]
    assert edits == []
    assert SYS_PATH_EDIT.search("    sys.path.insert(0, str(REPO))\n") and not SYS_PATH_EDIT.search("sys.path[0]")


def test_no_module_imports_test_py_by_its_name_or_loads_it_by_its_path():
    """`import test` finds the standard library's package wherever the checkout is not the current folder;
    everything imports restoration.cli instead, and nothing loads test.py from its path."""
    tests = [(str(p.relative_to(REPO)), p.read_text(encoding="utf-8")) for p in sorted((REPO / "tests").glob("*.py"))]
    found = []
    for where, source in _code_outside_tests() + tests:
        for node in ast.walk(ast.parse(source)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{where}:{node.lineno}" for name in names if name.split(".")[0] == "test"]
        # (this file names both to look for them)
        if "spec_from_file_location" in source and '"test.py"' in source and where != "tests/test_package.py":
            found.append(f"{where}: loads test.py by its path")
    assert found == []


def test_test_py_is_a_thin_entry_point_to_the_console_commands_main(capsys):
    source = (REPO / "test.py").read_text(encoding="utf-8")
    code = [node for node in ast.parse(source).body if not isinstance(node, ast.Expr)]  # the docstring aside
    assert len(code) <= 4 and "from restoration.cli import main" in source
    assert len(source.splitlines()) < 50
    with pytest.raises(SystemExit) as done:
        restoration.cli.main(["--help"])
    assert done.value.code == 0 and "--dataroot" in capsys.readouterr().out
    ran = subprocess.run([sys.executable, str(REPO / "test.py"), "--help"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0 and "--pretrained" in ran.stdout and "--model" in ran.stdout, ran.stderr


def test_editable_install_runs_the_commands_and_scripts_from_any_folder(tmp_path):
    source = _source_tree(tmp_path / "src")
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path).returncode == 0
    python = venv / "bin" / "python"
    # The new environment sees this one's packages (torch and the rest) through a .pth file.
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    Path(site.stdout.strip(), "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
                     "--no-build-isolation", "-e", source, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    loaded = _run(python, "-c", "from importlib.metadata import distribution\n"
                  "print(sorted(e.name for e in distribution('dcdgan').entry_points if callable(e.load())))",
                  cwd=elsewhere)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == str(sorted(COMMANDS))
    command = _run(venv / "bin" / "dcdgan-test", "--help", cwd=elsewhere)
    assert command.returncode == 0, command.stderr
    assert command.stdout.startswith("usage: dcdgan-test") and "--pretrained" in command.stdout
    by_path = _run(python, source / "scripts" / "comparison_grid.py", "--help", cwd=elsewhere)
    assert by_path.returncode == 0 and "usage:" in by_path.stdout, by_path.stderr
