"""Measure a book build: wall time, and each executed page's run time and peak memory.

``PageMonitor`` reads the build's log line by line (myst-nb logs "<page>: Executing notebook"
and "<page>: Executed notebook in N seconds") and samples, in a background thread, the
resident memory of the running kernel and everything it started (compilers, samplers).
``write_report`` keeps the history of builds and the latest numbers of every page in
``_build/build-report.json`` and renders ``_build/build-report.md``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

# Targets for a reader on Binder (2 GB) and for CI on 2 cores: each page under 120 s and
# 1.2 GB; a cold `make book` (environment set-up included) under 9 minutes. The report
# flags what is over; no test asserts them, since a slower machine is not a failure.
PAGE_MEMORY_MB = 1229
PAGE_SECONDS = 120
COLD_BOOK_SECONDS = 540

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"^(?P<path>\S+\.md): Executing notebook")
_FINISHED = re.compile(r"^(?P<path>\S+\.md): Executed notebook in (?P<seconds>[\d.]+) seconds")


class PageMonitor:
    """Follow the pages a build executes and the peak memory of each page's kernel."""

    def __init__(self, build_pid: int, root: Path, interval: float = 0.1):
        self._build = psutil.Process(build_pid)
        self._root = root
        self._interval = interval
        self._current: str | None = None
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.pages: dict[str, dict] = {}
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def feed(self, line: str) -> None:
        """Take one line of the build's log."""
        line = _ANSI.sub("", line)
        if match := _STARTED.match(line):
            with self._lock:
                self._current, self._peak = self._page(match["path"]), 0
        elif match := _FINISHED.match(line):
            with self._lock:
                self.pages[self._page(match["path"])] = {
                    "seconds": round(float(match["seconds"]), 2),
                    "peak_memory_mb": round(self._peak / 2**20, 1),
                }
                self._current = None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _page(self, path: str) -> str:
        return Path(path).resolve().relative_to(self._root).with_suffix("").as_posix()

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            rss = sum(_tree_rss(kernel) for kernel in self._kernels())
            with self._lock:
                if self._current is not None:
                    self._peak = max(self._peak, rss)

    def _kernels(self):
        try:
            children = self._build.children(recursive=True)
        except psutil.Error:
            return []
        return [p for p in children if _is_kernel(p)]


def _is_kernel(process) -> bool:
    try:
        return "ipykernel_launcher" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def _tree_rss(process) -> int:
    total = 0
    for member in [process, *_safe_children(process)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def _safe_children(process):
    try:
        return process.children(recursive=True)
    except psutil.Error:
        return []


def write_report(path_json: Path, build: dict, pages: dict[str, dict]) -> dict:
    """Add one build to the history, merge the pages it executed, write JSON and Markdown."""
    report = json.loads(path_json.read_text()) if path_json.exists() else {}
    report.setdefault("builds", []).append(
        {"finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), **build})
    report.setdefault("pages", {}).update(pages)
    path_json.write_text(json.dumps(report, indent=1) + "\n")
    path_json.with_suffix(".md").write_text(render_markdown(report))
    return report


def render_markdown(report: dict) -> str:
    """The report as Markdown tables, with the targets and any page over them."""
    lines = ["# Book build report", "",
             f"Targets: under {PAGE_SECONDS} s and {PAGE_MEMORY_MB} MB per page; a cold "
             f"build, environment set-up included, under {COLD_BOOK_SECONDS} s.", "",
             "## Builds", "",
             "| finished (UTC) | kind | environment set-up (s) | build (s) | editions (s) "
             "| pages executed | within target |",
             "|---|---|---|---|---|---|---|"]
    for build in report["builds"]:
        setup = build.get("environment_seconds")
        within = "-"
        if build["kind"] == "cold":
            total = build["seconds"] + (setup or 0.0)
            within = "yes" if total < COLD_BOOK_SECONDS else "NO"
        editions = ", ".join(f"{language} {seconds:.1f}"
                             for language, seconds in build.get("editions", {}).items())
        lines.append(f"| {build['finished']} | {build['kind']} | "
                     f"{'-' if setup is None else f'{setup:.1f}'} | {build['seconds']:.1f} | "
                     f"{editions or '-'} | {build['pages_executed']} | {within} |")
    lines += ["", "## Pages (latest execution of each)", "",
              "| page | execution (s) | peak memory (MB) | within targets |", "|---|---|---|---|"]
    for page, numbers in sorted(report["pages"].items()):
        ok = (numbers["seconds"] < PAGE_SECONDS
              and numbers["peak_memory_mb"] < PAGE_MEMORY_MB)
        lines.append(f"| {page} | {numbers['seconds']:.1f} | {numbers['peak_memory_mb']:.0f} | "
                     f"{'yes' if ok else 'NO'} |")
    return "\n".join(lines) + "\n"


def follow(command: list[str], root: Path,
           environment: dict[str, str] | None = None) -> tuple[int, float, dict[str, dict]]:
    """Run the build command (in ``environment``, by default this process's), echoing its
    log, and return (exit code, seconds, pages)."""
    started = time.perf_counter()
    process = psutil.Popen(command, cwd=root, env=environment, stdout=psutil.subprocess.PIPE,
                           stderr=psutil.subprocess.STDOUT, text=True, bufsize=1)
    monitor = PageMonitor(process.pid, root)
    for line in process.stdout:
        print(line, end="", flush=True)
        monitor.feed(line.strip())
    code = process.wait()
    monitor.stop()
    return code, time.perf_counter() - started, monitor.pages
