"""The library is an installable package (pyproject.toml): its wheel holds every file of paddlevideo/ (the fused
kernels' C++ sources included, found from a non-editable install), its dependencies are requirements.txt's, and
the tools run from a clone that was not installed (tools/_bootstrap.py) with the third-party warnings quiet."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest
from conftest import REPO

PACKAGE = REPO / "paddlevideo"


def _package_files():
    """Every file of the package in the clone, as wheel paths (``paddlevideo/...``), caches left out."""
    return sorted(str(path.relative_to(REPO)).replace(os.sep, "/") for path in PACKAGE.rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc")


def _requirements():
    """requirements.txt's requirements (comments dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines())
    return [line for line in lines if line]


def _normalised(requirement):
    """``'paddlepaddle<4,>=3.0'`` and ``'paddlepaddle>=3.0,<4'`` alike."""
    name, spec = re.match(r"([A-Za-z0-9_.\-]+)(.*)", requirement.replace(" ", "")).groups()
    return name.lower() + ",".join(sorted(spec.split(","))) if spec else name.lower()


def test_pyproject_reads_dependencies_from_requirements_and_ships_every_package_file():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert config["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}
    assert "dependencies" in config["project"]["dynamic"] and "dependencies" not in config["project"]
    patterns = config["tool"]["setuptools"]["package-data"]["paddlevideo"]
    non_python = [name for name in _package_files() if not name.endswith(".py")]
    assert any(name.endswith(".cc") for name in non_python)  # the kernels' sources are among them
    for name in non_python:  # a file added under paddlevideo/ later must be matched by a pattern too
        inside = name[len("paddlevideo/"):]
        assert any(_glob_matches(pattern, inside) for pattern in patterns), f"{name} would not be installed"


def _glob_matches(pattern, path):
    """setuptools' package-data glob (``**`` any folders, ``*`` within a name)."""
    regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, path) is not None


def _can_build_offline():
    """setuptools with a built-in bdist_wheel (>= 70.1) or the wheel package: the wheel builds from this
    environment; otherwise pip fetches setuptools into an isolated build environment."""
    return importlib.util.find_spec("setuptools.command.bdist_wheel") is not None or \
        importlib.util.find_spec("wheel") is not None


@pytest.mark.slow
def test_the_wheel_installs_the_library_with_its_kernel_sources(tmp_path):
    source = tmp_path / "clone"  # a copy: building in place would leave build/ and *.egg-info in the clone
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(PACKAGE, source / "paddlevideo", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(source)]
    if _can_build_offline():
        build.insert(4, "--no-build-isolation")
    done = subprocess.run(build, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("paddlevideo_timesformer-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert sorted(n for n in names if n.startswith("paddlevideo/")) == _package_files()
    required = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert sorted(map(_normalised, required)) == sorted(map(_normalised, _requirements()))

    # Installed (not editable) somewhere else, imported from a folder that is not the clone: the kernel
    # sources are found beside the installed module, and the build's cache name is computed from them.
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    probe = ("import os, paddlevideo; from paddlevideo.modeling.layers import cpu_kernels as k; "
             "print(paddlevideo.__file__); print(all(os.path.isfile(p) for p in k.SOURCES + k.HEADERS)); "
             "print(k.module_name())")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={**env, "PYTHONPATH": str(site)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    where, found, name = done.stdout.split()
    assert where == str(site / "paddlevideo" / "__init__.py") and found == "True"
    assert name.startswith("paddlevideo_cpu_ops_")


def test_a_tool_runs_from_a_clone_that_was_not_installed(tmp_path):
    # Outside the clone, with no paddlevideo on the path: tools/_bootstrap.py puts the clone first, and the
    # warning filter is on before paddle is imported (convert_checkpoint imports it at start-up).
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(REPO / "tools" / "convert_checkpoint.py"), "--help"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "usage:" in done.stdout and "ccache" not in done.stderr, done.stderr[-3000:]
    probe = ("import runpy, sys; runpy.run_path(sys.argv[1]); import paddlevideo, warnings; print(paddlevideo.__file__);"
             "print(any(f[0] == 'ignore' and f[1] is not None and f[1].pattern == 'No ccache found' "
             "for f in warnings.filters))")
    done = subprocess.run([sys.executable, "-c", probe, str(REPO / "tools" / "_bootstrap.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [str(PACKAGE / "__init__.py"), "True"]
