"""The build report: log parsing, memory sampling, the Markdown tables and the real report."""

import json
import os
import subprocess
import sys
import time


from book_pages import ROOT, SITE, load_tool, notebook_pages, require_built

build_report = load_tool("build_report")


def test_monitor_attributes_kernel_memory_to_the_running_page(tmp_path):
    page = tmp_path / "book" / "demo.md"
    page.parent.mkdir()
    page.touch()
    # A stand-in kernel: a child process whose command line names ipykernel_launcher and
    # that holds about 200 MB.
    kernel = subprocess.Popen([sys.executable, "-c",
                               "import time; b = b\"x\" * (200 * 2**20); time.sleep(3)",
                               "ipykernel_launcher"])
    monitor = build_report.PageMonitor(os.getpid(), tmp_path, interval=0.05)
    monitor.feed(f"\x1b[32m{page}: Executing notebook using local CWD [mystnb]\x1b[0m")
    time.sleep(1.5)
    monitor.feed(f"{page}: Executed notebook in 2.50 seconds [mystnb]")
    monitor.stop()
    kernel.kill()
    numbers = monitor.pages["book/demo"]
    assert numbers["seconds"] == 2.5
    assert 200 <= numbers["peak_memory_mb"] < 400


def test_markdown_flags_pages_over_target():
    report = {"builds": [{"finished": "t", "kind": "cold", "seconds": 12.0,
                          "pages_executed": 2, "environment_seconds": 60.0,
                          "editions": {"en": 11.0, "zh": 1.0}}],
              "pages": {"book/ok": {"seconds": 3.0, "peak_memory_mb": 180.0},
                        "book/heavy": {"seconds": 3.0, "peak_memory_mb": 2000.0}}}
    text = build_report.render_markdown(report)
    assert "| book/ok | 3.0 | 180 | yes |" in text
    assert "| book/heavy | 3.0 | 2000 | NO |" in text
    assert "| t | cold | 60.0 | 12.0 | en 11.0, zh 1.0 | 2 | yes |" in text


def test_markdown_flags_a_slow_cold_build():
    report = {"builds": [{"finished": "t", "kind": "cold", "seconds": 500.0,
                          "pages_executed": 9, "environment_seconds": 100.0},
                         {"finished": "u", "kind": "incremental", "seconds": 5.0,
                          "pages_executed": 0}],
              "pages": {}}
    text = build_report.render_markdown(report)
    assert "| t | cold | 100.0 | 500.0 | - | 9 | NO |" in text
    assert "| u | incremental | - | 5.0 | - | 0 | - |" in text


def test_write_report_keeps_history(tmp_path):
    path = tmp_path / "report.json"
    build_report.write_report(path, {"kind": "cold", "seconds": 9.0, "pages_executed": 1},
                              {"book/a": {"seconds": 1.0, "peak_memory_mb": 100.0}})
    build_report.write_report(path, {"kind": "incremental", "seconds": 1.0,
                                     "pages_executed": 0}, {})
    report = json.loads(path.read_text())
    assert [b["kind"] for b in report["builds"]] == ["cold", "incremental"]
    assert report["pages"] == {"book/a": {"seconds": 1.0, "peak_memory_mb": 100.0}}
    assert (tmp_path / "report.md").exists()


def test_the_books_report_covers_every_notebook_page():
    """Every page has its numbers in the report; whether they are within the targets is
    the report's to say (a slower machine is not a failure)."""
    require_built(SITE)  # skips when the book is not built (fails on CI)
    report = json.loads((ROOT / "_build" / "build-report.json").read_text())
    for page in notebook_pages():
        numbers = report["pages"][page]
        assert numbers["seconds"] > 0
        assert numbers["peak_memory_mb"] > 50  # a kernel was sampled, not an empty record
