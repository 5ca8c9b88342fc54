"""What the browser tests share: Debian's headless Chromium driven by Playwright, a local
server for each built site, and a page visit that records console errors and any request
to another host. Importing this module skips the importing test module, with what to
install, on a machine without Chromium or Playwright (CI must have both: .ci/run installs
Chromium, ``make test`` Playwright)."""

import functools
import http.server
import os
import shutil
import threading
from urllib.parse import urlparse

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if os.environ.get("CI"):  # CI must run these tests, not skip them (.ci/run installs both)
    if CHROMIUM is None:
        raise RuntimeError("CI needs Chromium for the browser tests: `apt-get install chromium`")
    import playwright.sync_api as playwright_api
else:
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright is missing: run `make test`, which installs it")
    if CHROMIUM is None:
        pytest.skip("no Chromium: install Debian's package (`apt-get install chromium`)",
                    allow_module_level=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory):
    """Serve ``directory`` on 127.0.0.1 (a free port) from a daemon thread."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def address(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def launch(driver):
    """Headless Chromium from Debian, with nothing that would reach the network."""
    return driver.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync"])


class Visit:
    """A page opened in a fresh context, with its console errors and outside requests."""

    def __init__(self, browser, url):
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors, self.outside = [], []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.route("**/*", self._route)
        self.page.goto(url, wait_until="networkidle")

    def _route(self, route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def typeset(self):
        """Wait for MathJax, if the page loads it; return the number of typeset formulas."""
        if self.page.evaluate("typeof MathJax === 'undefined'"):
            return 0
        self.page.wait_for_function("MathJax.startup && MathJax.startup.promise")
        self.page.evaluate("MathJax.startup.promise")
        return self.page.locator("mjx-container").count()
