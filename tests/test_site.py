"""The built site in _build/html: every page present, nothing fetched from the internet,
math served locally, figures, downloads and launch links in place.

These tests read the output of ``make book``; ``.ci/run`` builds it first. Without a built
site they are skipped locally and fail on CI (where ``CI`` is set).
"""

import json
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"

if not (SITE / "book" / "index.html").exists():
    reason = "the book is not built: run `make book` first"
    if os.environ.get("CI"):
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)

REPO = "mixed-models-companion/mixed-models-companion"


def _toc_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for entry in toc.get("chapters", []):
        pages.append(entry["file"])
        pages.extend(section["file"] for section in entry.get("sections", []))
    return pages


def _notebook_pages():
    return [p for p in _toc_pages() if "kernelspec:" in (ROOT / f"{p}.md").read_text()]


def _soup(page):
    return BeautifulSoup((SITE / f"{page}.html").read_text(encoding="utf-8"), "html.parser")


def _is_external(url):
    return bool(urlparse(url).netloc) or url.startswith("//")


@pytest.mark.parametrize("page", _toc_pages())
def test_page_is_built(page):
    assert (SITE / f"{page}.html").exists()


@pytest.mark.parametrize("page", [*_toc_pages(), "search", "genindex"])
def test_page_loads_nothing_from_outside(page):
    soup = _soup(page)
    loaded = [tag.get("src") for tag in soup.find_all(["script", "img", "iframe"])]
    loaded += [tag.get("href") for tag in soup.find_all("link")
               if {"stylesheet", "preload", "icon"} & set(tag.get("rel", []))]
    external = [url for url in loaded if url and _is_external(url)]
    assert external == [], f"{page} loads {external}"
    inline = " ".join(tag.string or "" for tag in soup.find_all("script")
                      if tag.get("type") != "text/x-thebe-config")
    assert not re.search(r"https?://(cdn|unpkg|cdnjs)\.", inline)


def test_stylesheets_import_nothing_from_outside():
    for css in SITE.rglob("*.css"):
        text = css.read_text(encoding="utf-8", errors="replace")
        assert not re.search(r"@import\s+(url\()?['\"]?https?:", text), css
        assert not re.search(r"url\(['\"]?https?:", text), css


def test_math_is_rendered_by_the_bundled_mathjax():
    soup = _soup("book/data")
    assert soup.find(class_="math"), "the data page should contain a displayed equation"
    sources = [tag.get("src", "") for tag in soup.find_all("script")]
    mathjax = [src.split("?")[0] for src in sources if "mathjax" in src.lower()]
    assert mathjax == ["../_static/mathjax/tex-mml-chtml.js"]
    assert (SITE / "_static" / "mathjax" / "tex-mml-chtml.js").exists()
    fonts = SITE / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert len(list(fonts.glob("*.woff"))) > 20


def test_data_page_shows_a_figure_per_data_set():
    soup = _soup("book/data")
    figures = soup.select("figure img")
    assert len(figures) >= 6
    for img in figures:
        assert (SITE / "book" / img["src"]).resolve().exists(), img["src"]
    labels = {fig.get("id") for fig in soup.find_all("figure")}
    assert {"fig-data-sleepstudy", "fig-data-cbpp", "fig-data-loblolly",
            "fig-data-puromycin", "fig-data-topo", "fig-data-volcano"} <= labels


def test_glued_numbers_are_filled_in():
    text = " ".join(_soup("book/data").get_text(" ").split())
    assert "180 reaction times" in text
    assert "{glue" not in text


@pytest.mark.parametrize("page", _notebook_pages())
def test_executed_notebook_is_offered_for_download(page):
    notebook = SITE / "_sources" / f"{page}.ipynb"
    cells = json.loads(notebook.read_text())["cells"]
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    assert code and all(cell["execution_count"] for cell in code)
    assert any(cell["outputs"] for cell in code)
    links = [a["href"] for a in _soup(page).find_all("a", href=True)]
    assert f"../_sources/{page}.ipynb" in links


@pytest.mark.parametrize("page", _notebook_pages())
def test_launch_buttons_point_at_this_page(page):
    links = [a["href"] for a in _soup(page).find_all("a", href=True)]
    binder = f"https://mybinder.org/v2/gh/{REPO}/main?urlpath=lab/tree/{page}.md"
    colab = (f"https://colab.research.google.com/github/{REPO}/blob/gh-pages/"
             f"_sources/{page}.ipynb")
    assert binder in links
    assert colab in links
    assert (ROOT / f"{page}.md").exists()
    assert (SITE / "_sources" / f"{page}.ipynb").exists()


def test_bibliography_lists_the_chapters_books():
    text = _soup("book/bibliography").get_text(" ")
    for title in ["Mixed-Effects Models in S and S-PLUS",
                  "Mixed Models: Theory and Applications with R",
                  "Linear Mixed-Effects Models Using R",
                  "Linear and Generalized Linear Mixed Models and Their Applications"]:
        assert title in text
