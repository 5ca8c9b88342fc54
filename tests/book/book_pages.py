"""What the tests of the built book share: where it is, and which pages it has."""

import importlib
import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"  # the published site: an index page and one folder per edition
LANGUAGES = ("en", "zh")
EDITIONS = {language: HTML / language for language in LANGUAGES}
STUDENT_EDITIONS = {language: ROOT / "_build" / "student" / "html" / language
                    for language in LANGUAGES}
SITE = EDITIONS["en"]
STUDENT_SITE = STUDENT_EDITIONS["en"]


def require_built(*sites: Path) -> None:
    """Skip the calling test module when a site is not built (fail on CI, which builds it)."""
    for site in sites:
        if not (site / "book" / "index.html").exists():
            command = "make student" if site in STUDENT_EDITIONS.values() else "make book"
            reason = f"{site.relative_to(ROOT)} is not built: run `{command}` first"
            if os.environ.get("CI"):
                raise RuntimeError(reason)
            pytest.skip(reason, allow_module_level=True)


def toc_pages() -> list[str]:
    """Every page of ``_toc.yml``, as paths without suffix (``book/data``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for entry in toc.get("chapters", []):
        pages.append(entry["file"])
        pages.extend(section["file"] for section in entry.get("sections", []))
    return pages


def notebook_pages() -> list[str]:
    """The pages of the table of contents that are notebooks (they have a kernel)."""
    return [p for p in toc_pages() if "kernelspec:" in (ROOT / f"{p}.md").read_text()]


def load_tool(name: str):
    """A build script of ``tools/`` (not a package) as a module: ``load_tool("build_book")``."""
    tools = str(ROOT / "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    return importlib.import_module(name)
