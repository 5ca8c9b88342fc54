"""Every data file the package reads ships in its wheel (a non-editable install, as on
Colab, has only what ``[tool.setuptools.package-data]`` lists)."""

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_data_file_is_declared():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = config["tool"]["setuptools"]["package-data"]
    source = ROOT / "src"
    missing = []
    for path in (source / "companion").rglob("*"):
        if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
            continue
        relative = path.relative_to(source)
        covered = any(
            relative.parts[:len(package.split("."))] == tuple(package.split("."))
            and fnmatch.fnmatch("/".join(relative.parts[len(package.split(".")):]), pattern)
            for package, patterns in declared.items() for pattern in patterns)
        if not covered:
            missing.append(str(relative))
    assert not missing, f"not in the wheel (add to package-data): {missing}"
