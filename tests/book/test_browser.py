"""The built book in a real browser: Debian's headless Chromium driven by Playwright.

Each page of ``_toc.yml`` is served from ``_build/html/en`` on 127.0.0.1 and must load with no
console error and no request to any other host; math must be typeset; figures must show;
solutions must stay folded until clicked and be absent from the student edition; the
search page must find "REML"; downloads and launch buttons must point at real files.
Skipped, with what to install, on a machine without Chromium; ``.ci/run`` installs it.
"""

from pathlib import Path
from urllib.parse import urlparse

import pytest
from book_pages import ROOT, SITE, STUDENT_SITE, notebook_pages, require_built, toc_pages
from browser_support import address, serve

REPO = "mixed-models-companion/mixed-models-companion"
# Figures each notebook page must show; a new page must add its count here.
EXPECTED_FIGURES = {"book/index": 0, "book/running": 0, "book/data": 6, "book/lmm": 5,
                    "book/glmm": 2, "book/nlmm": 2, "book/simulation": 4,
                    "book/summary": 1, "book/exercises/index": 0,
                    "book/exercises/plantgrowth": 1, "book/exercises/epil": 1,
                    "book/exercises/puromycin": 2, "book/exercises/volcano": 2,
                    "book/exercises/topo": 1, "book/inference": 2, "book/teaching": 0}

require_built(SITE, STUDENT_SITE)


@pytest.fixture(scope="module")
def sites():
    servers = {"book": serve(SITE), "student": serve(STUDENT_SITE)}
    yield {name: address(server) for name, server in servers.items()}
    for server in servers.values():
        server.shutdown()


@pytest.mark.parametrize("page", [*toc_pages(), "search"])
def test_page_loads_cleanly_and_stays_local(visit, sites, page):
    loaded = visit(f"{sites['book']}/{page}.html")
    assert loaded.errors == []
    assert loaded.outside == []


@pytest.mark.parametrize("page", toc_pages())
def test_math_is_typeset(visit, sites, page):
    loaded = visit(f"{sites['book']}/{page}.html")
    formulas = loaded.page.locator("article .math").count()
    assert loaded.typeset() >= formulas
    prose = loaded.page.evaluate("""() => {
        const article = document.querySelector('article').cloneNode(true);
        article.querySelectorAll('pre, code, mjx-container, .cell_output')
               .forEach(e => e.remove());
        return article.innerText; }""")
    assert "\\begin" not in prose and "$$" not in prose and "\\(" not in prose


def test_every_notebook_page_has_a_figure_count():
    assert set(notebook_pages()) <= set(EXPECTED_FIGURES)


@pytest.mark.parametrize("page", notebook_pages())
def test_figures_are_shown(visit, sites, page):
    loaded = visit(f"{sites['book']}/{page}.html")
    images = loaded.page.locator("article figure img")
    assert images.count() >= EXPECTED_FIGURES[page]
    widths = images.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert all(width > 0 for width in widths)


def test_solutions_are_folded_until_clicked(visit, sites):
    loaded = visit(f"{sites['book']}/book/data.html")
    solution = loaded.page.locator(".solution").first
    code = solution.locator(".cell_input")
    assert solution.count() == 1
    assert not code.is_visible()
    solution.locator(".admonition-title").click()
    code.wait_for(state="visible")
    assert "crosstab" in code.inner_text()


def test_student_edition_has_no_solutions(visit, sites):
    loaded = visit(f"{sites['student']}/book/data.html")
    assert loaded.errors == [] and loaded.outside == []
    assert loaded.page.locator(".solution").count() == 0
    assert loaded.page.locator(".exercise").count() >= 1
    assert "crosstab" not in loaded.page.locator("article").inner_text()
    for download in ["_sources/book/data.ipynb", "_sources/book/data.md"]:
        text = (STUDENT_SITE / download).read_text(encoding="utf-8")
        assert "crosstab" not in text and "solution-start" not in text, download
    # the search index holds stemmed words: "tabul" (from the solution's
    # "cross-tabulation") is in the book's index and must not be in the student's
    assert '"tabul"' in (SITE / "searchindex.js").read_text(encoding="utf-8")
    assert '"tabul"' not in (STUDENT_SITE / "searchindex.js").read_text(encoding="utf-8")


def test_search_finds_reml(visit, sites):
    loaded = visit(f"{sites['book']}/search.html?q=REML")
    results = loaded.page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=15_000)
    assert results.count() >= 1
    assert loaded.errors == []


@pytest.mark.parametrize("page", notebook_pages())
def test_download_and_launch_buttons_point_at_real_files(visit, sites, page):
    loaded = visit(f"{sites['book']}/{page}.html")
    hrefs = loaded.page.locator("a[href]").evaluate_all("as => as.map(a => a.href)")
    downloads = [h for h in hrefs if h.startswith(sites["book"]) and "/_sources/" in h]
    assert {Path(urlparse(h).path).suffix for h in downloads} >= {".md", ".ipynb"}
    for href in downloads:
        assert loaded.page.request.get(href).status == 200, href
    binder = [h for h in hrefs if h.startswith("https://mybinder.org/")]
    colab = [h for h in hrefs if h.startswith("https://colab.research.google.com/")]
    assert binder == [f"https://mybinder.org/v2/gh/{REPO}/main?urlpath=lab/tree/{page}.md"]
    assert (ROOT / f"{page}.md").exists()  # the path Binder opens, in the repository
    assert colab == [f"https://colab.research.google.com/github/{REPO}/blob/gh-pages/"
                     f"en/_sources/{page}.ipynb"]
    assert loaded.page.request.get(f"{sites['book']}/_sources/{page}.ipynb").status == 200
