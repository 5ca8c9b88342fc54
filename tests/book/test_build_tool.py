"""tools/build_book.py: a change in the package re-executes the pages that import it."""

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

from book_pages import ROOT, load_tool

build_book = load_tool("build_book")


@pytest.fixture
def project(tmp_path):
    """A copy of the package and constraints plus two pages, one of which uses companion."""
    shutil.copytree(ROOT / "src" / "companion", tmp_path / "src" / "companion",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "constraints.txt", tmp_path / "constraints.txt")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "uses.md").write_text("```{code-cell}\nimport companion\n```\n")
    (tmp_path / "book" / "plain.md").write_text("```{code-cell}\nimport numpy\n```\n")
    return tmp_path


def test_fingerprint_follows_package_and_pins(project):
    before = build_book.fingerprint(project)
    assert build_book.fingerprint(project) == before
    (project / "src" / "companion" / "plots.py").write_text("# edited\n", encoding="utf-8")
    after_code = build_book.fingerprint(project)
    assert after_code != before
    with (project / "constraints.txt").open("a") as pins:
        pins.write("numpy==0.0\n")
    assert build_book.fingerprint(project) != after_code


def test_only_pages_importing_companion_are_selected(project):
    assert build_book.pages_using_companion(project) == [project / "book" / "uses.md"]


def test_invalidate_drops_cached_runs_and_touches_pages(project):
    cache_dir = project / "cache"
    cache = get_cache(str(cache_dir))
    pages = [project / "book" / "uses.md", project / "book" / "plain.md"]
    for page in pages:
        notebook = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(page.read_text(), execution_count=1)])
        cache.cache_notebook_bundle(
            CacheBundleIn(notebook, str(page)), check_validity=False)
    old_mtime = pages[0].stat().st_mtime - 100
    os.utime(pages[0], (old_mtime, old_mtime))

    dropped = build_book.invalidate([pages[0]], cache_dir)

    assert dropped == 1
    assert [Path(r.uri) for r in cache.list_cache_records()] == [pages[1]]
    assert pages[0].stat().st_mtime > old_mtime


def test_edition_config_has_absolute_paths_and_the_language(tmp_path, monkeypatch):
    import yaml

    monkeypatch.setattr(build_book, "BUILD", tmp_path / "build")
    monkeypatch.setattr(build_book, "STUDENT", tmp_path / "student")
    config = yaml.safe_load(build_book.edition_config("zh", student=True).read_text())
    settings = config["sphinx"]["config"]
    assert (settings["language"], settings["edition_language"]) == ("zh_CN", "zh")
    assert settings["hide_solutions"] is True and config["title"].endswith("（学生版）")
    assert settings["figure_labels"] == str(ROOT / "locales" / "zh" / "figure-labels.yml")
    paths = [config["execute"]["cache"], *config["bibtex_bibfiles"],
             *config["sphinx"]["local_extensions"].values()]
    assert all(Path(path).is_absolute() and Path(path).exists() for path in paths[1:])
    assert Path(paths[0]).is_absolute()
    english = yaml.safe_load(build_book.edition_config("en", student=False).read_text())
    assert english["sphinx"]["config"]["figure_labels"] == ""
    assert "hide_solutions" not in english["sphinx"]["config"]


def test_chooser_names_each_edition_in_its_language(tmp_path):
    text = build_book.write_chooser(tmp_path).read_text(encoding="utf-8")
    assert 'href="en/index.html" hreflang="en" lang="en"' in text
    assert 'href="zh/index.html" hreflang="zh" lang="zh"' in text
    assert '<html lang="en">' in text and "<main>" in text


def test_a_drifted_translation_stops_the_build_naming_it(monkeypatch, capsys):
    drift = ['book/lmm.md (zh): paragraph 12 changed or is new: "nlme and lme4 maximize…"']
    monkeypatch.setattr(build_book.translate, "problems", lambda language, pages: drift)
    with pytest.raises(ValueError, match="paragraph 12 changed or is new"):
        build_book.edition_pages("zh")
    monkeypatch.setattr(build_book, "CACHE", build_book.BUILD / "no-cache-here")
    monkeypatch.setattr(build_book, "fingerprint", lambda: "unchanged")
    monkeypatch.setattr(build_book.build_report, "follow",
                        lambda *args: pytest.fail("the build ran despite the drift"))
    assert build_book.main([]) == 1
    assert "book/lmm.md (zh): paragraph 12" in capsys.readouterr().err
    assert "IPYTHONDIR" not in os.environ or os.environ["IPYTHONDIR"] != str(
        build_book.BUILD / "ipython")  # the book's kernel settings stay in the build
