"""Accessibility of the built book, in headless Chromium: axe-core (axe-playwright-python's
copy) over every page of both editions finds no serious or critical violation; the
solutions' toggles and the language switch work from the keyboard alone."""

import pytest

from book_pages import EDITIONS, HTML, ROOT, require_built, toc_pages
from browser_support import address, serve

axe_playwright = pytest.importorskip(
    "axe_playwright_python.sync_playwright", reason="run `make test`, which installs it")

require_built(*EDITIONS.values())

BLOCKING = {"serious", "critical"}
SOLUTION_PAGES = [p for p in toc_pages() if "{solution-start}" in (ROOT / f"{p}.md").read_text()]
MAX_TABS = 600  # presses of Tab to reach a control from the top of a page


@pytest.fixture(scope="module")
def site():
    server = serve(HTML)
    yield address(server)
    server.shutdown()


@pytest.fixture(scope="module")
def axe():
    return axe_playwright.Axe()


def _blocking(results) -> list[str]:
    """The serious and critical violations, one line each with the elements they hit."""
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in BLOCKING:
            targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
            found.append(f"{violation['id']} ({violation['impact']}, {len(targets)}): "
                         f"{violation['help']} — {targets[:3]}")
    return found


@pytest.mark.parametrize("language", EDITIONS)
@pytest.mark.parametrize("page", [*toc_pages(), "search", "genindex"])
def test_axe_finds_no_serious_violation(visit, site, axe, language, page):
    loaded = visit(f"{site}/{language}/{page}.html")
    loaded.typeset()
    assert _blocking(axe.run(loaded.page)) == []


def test_axe_passes_the_edition_chooser(visit, site, axe):
    assert _blocking(axe.run(visit(f"{site}/index.html").page)) == []


def _tab_to(page, selector: str) -> None:
    """Press Tab from the top of the page until the focus is on ``selector``."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"{selector} is not reachable with Tab ({MAX_TABS} presses)")


@pytest.mark.parametrize("language", EDITIONS)
@pytest.mark.parametrize("page", SOLUTION_PAGES)
def test_solution_opens_and_closes_from_the_keyboard(visit, site, language, page):
    loaded = visit(f"{site}/{language}/{page}.html")
    solution = loaded.page.locator(".solution").first
    body = solution.locator("section, .cell").first
    assert not body.is_visible()
    _tab_to(loaded.page, ".solution .toggle-button")
    loaded.page.keyboard.press("Enter")
    body.wait_for(state="visible")
    assert solution.locator(".toggle-button").get_attribute("aria-expanded") == "true"
    loaded.page.keyboard.press("Space")
    body.wait_for(state="hidden")


@pytest.mark.parametrize("language", EDITIONS)
def test_language_switch_from_the_keyboard(visit, site, language):
    other = next(code for code in EDITIONS if code != language)
    loaded = visit(f"{site}/{language}/book/lmm.html")
    _tab_to(loaded.page, "nav.edition-switch a")
    with loaded.page.expect_navigation():
        loaded.page.keyboard.press("Enter")
    assert loaded.page.url == f"{site}/{other}/book/lmm.html"
    assert loaded.page.evaluate("document.documentElement.lang").startswith(other)
