"""The notebooks the book offers for download: executed, faithful to the page, runnable."""

import os
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"

if not (SITE / "book" / "index.html").exists():
    reason = "the book is not built: run `make book` first"
    if os.environ.get("CI"):
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)

PAGES = sorted(p.relative_to(SITE / "_sources").with_suffix("").as_posix()
               for p in (SITE / "_sources").rglob("*.ipynb"))


def _code(notebook):
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def test_every_notebook_page_is_downloadable():
    pages = [p.relative_to(ROOT).with_suffix("").as_posix()
             for p in (ROOT / "book").rglob("*.md")
             if "kernelspec:" in p.read_text() and p.stem != "README"]
    toc_pages = [p for p in pages if (SITE / f"{p}.html").exists()]
    assert toc_pages and set(toc_pages) <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_download_is_the_executed_page(page):
    downloaded = nbformat.read(SITE / "_sources" / f"{page}.ipynb", as_version=4)
    nbformat.validate(downloaded)
    source = jupytext.read(ROOT / f"{page}.md")
    assert _code(downloaded) == _code(source)
    code_cells = [c for c in downloaded.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells)
    assert any(c.outputs for c in code_cells)
    assert not any(o.get("output_type") == "error" for c in code_cells for o in c.outputs)


def test_downloaded_data_page_runs_top_to_bottom(tmp_path):
    fresh = nbformat.read(SITE / "_sources" / "book" / "data.ipynb", as_version=4)
    for cell in fresh.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    NotebookClient(fresh, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    figures = [o for c in fresh.cells if c.cell_type == "code" for o in c.outputs
               if "image/png" in o.get("data", {})]
    assert len(figures) >= 6
