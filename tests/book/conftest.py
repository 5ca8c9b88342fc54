"""Fixtures of the browser tests (tests/book/browser_support.py holds the rest). They
import Playwright only when a test asks for them, so the other tests here never need it."""

import pytest


@pytest.fixture(scope="module")
def browser():
    import browser_support

    with browser_support.playwright_api.sync_playwright() as driver:
        chromium = browser_support.launch(driver)
        yield chromium
        chromium.close()


@pytest.fixture
def visit(browser):
    """Open a page (a fresh browser context each time); closed after the test."""
    from browser_support import Visit

    opened = []

    def open_page(url):
        opened.append(Visit(browser, url))
        return opened[-1]

    yield open_page
    for page in opened:
        page.context.close()
