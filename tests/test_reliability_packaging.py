"""Packaging: one version, shown by --version; the wheel configuration.

(.ci/wheel builds, repairs and installs the actual wheel; these tests run
everywhere, also against that installed wheel.)
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

import icas
from icas.cli import cluster_main

ROOT = Path(__file__).resolve().parents[1]


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cluster_main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"icas {icas.__version__}\n"


def test_python_dash_m_version():
    r = subprocess.run([sys.executable, "-m", "icas", "--version"], capture_output=True,
                       text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0 and r.stdout == f"icas {icas.__version__}\n"


def test_the_version_has_one_source():
    """__init__.py holds it; the build reads it from there (regex provider);
    an installed distribution reports the same; build_info too."""
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)*", icas.__version__)
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    provider = meta["tool"]["scikit-build"]["metadata"]["version"]
    assert provider["provider"] == "scikit_build_core.metadata.regex"
    assert provider["input"] == "python/icas/__init__.py"
    text = (ROOT / provider["input"]).read_text(encoding="utf-8")
    assert len(re.findall(r"^__version__\s*=", text, re.M)) == 1
    assert icas.build_info()["version"] == icas.__version__
    try:
        installed = importlib.metadata.version("icas")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("icas is imported from the source tree, not installed")
    assert installed == icas.__version__


def test_cibuildwheel_configuration():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "cibuildwheel"]  # fmt: skip
    assert set(cfg["linux"]["archs"]) == {"x86_64", "aarch64"}
    assert set(cfg["macos"]["archs"]) == {"x86_64", "arm64"}
    assert "{project}/tests" in cfg["test-command"] and cfg["test-extras"] == ["test"]
    builds = cfg["build"].split()
    assert all(b.startswith("cp3") for b in builds)
    # Every Python the project supports gets wheels.
    low = re.search(
        r">=\s*3\.(\d+)",
        tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
            "requires-python"
        ],
    )
    assert f"cp3{low.group(1)}-*" in builds
