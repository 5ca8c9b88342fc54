"""The built site's HTML, read without a browser: every page present, nothing loaded from
the internet, math served locally, figures and glued numbers in place, the bibliography.

These tests read the output of ``make book``; ``.ci/run`` builds it first. Without a built
site they are skipped locally and fail on CI (where ``CI`` is set).
"""

import re
from urllib.parse import urlparse

import pytest
from bs4 import BeautifulSoup

from book_pages import SITE, require_built, toc_pages

require_built(SITE)


def _soup(page):
    return BeautifulSoup((SITE / f"{page}.html").read_text(encoding="utf-8"), "html.parser")


def _is_external(url):
    return bool(urlparse(url).netloc) or url.startswith("//")


@pytest.mark.parametrize("page", toc_pages())
def test_page_is_built(page):
    assert (SITE / f"{page}.html").exists()


@pytest.mark.parametrize("page", [*toc_pages(), "search", "genindex"])
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


def test_bibliography_lists_the_chapters_books():
    text = _soup("book/bibliography").get_text(" ")
    for title in ["Mixed-Effects Models in S and S-PLUS",
                  "Mixed Models: Theory and Applications with R",
                  "Linear Mixed-Effects Models Using R",
                  "Linear and Generalized Linear Mixed Models and Their Applications"]:
        assert title in text
