"""The notebooks the book offers for download: executed, faithful to the page, runnable."""

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from book_pages import ROOT, SITE, notebook_pages, require_built
from companion.classroom.assignments import colab_install_spec, page_text

require_built(SITE)


def _code(notebook):
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


@pytest.mark.parametrize("page", notebook_pages())
def test_download_is_the_executed_page(page):
    links = (SITE / f"{page}.html").read_text(encoding="utf-8")
    assert f'href="{"../" * page.count("/")}_sources/{page}.ipynb"' in links
    downloaded = nbformat.read(SITE / "_sources" / f"{page}.ipynb", as_version=4)
    nbformat.validate(downloaded)
    source = jupytext.reads(page_text((ROOT / f"{page}.md").read_text("utf-8"), True),
                            fmt="md:myst")
    assert _code(downloaded) == _code(source)  # with the Colab install command filled in
    code_cells = [c for c in downloaded.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code_cells)
    assert any(c.outputs for c in code_cells)
    assert not any(o.get("output_type") == "error" for c in code_cells for o in c.outputs)


@pytest.mark.parametrize("page", notebook_pages())
def test_the_colab_cell_installs_the_configured_requirement(page):
    downloaded = nbformat.read(SITE / "_sources" / f"{page}.ipynb", as_version=4)
    first = next(c.source for c in downloaded.cells if c.cell_type == "code")
    assert "google.colab" in first
    assert f'%pip install --quiet "{colab_install_spec()}"' in first


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
