"""The notebooks a reader downloads run where readers run them: the package built as a wheel
and installed, not editable, into a fresh virtual environment that has nothing else, with
the requirement the pages' Colab cell shows (the wheel standing in for the repository).

Slow (a few minutes: the environment is installed from PyPI, or pip's cache, and the LMM
page samples two Bayesian models); it needs the built book for the downloadable notebooks.
"""

import os
import re
import subprocess
import sys
import textwrap
import venv

import nbformat
import pytest

from book_pages import ROOT, SITE, require_built

require_built(SITE)
pytestmark = pytest.mark.slow

PAGES = ["book/lmm", "book/exercises/plantgrowth"]
INSTALL = re.compile(r'%pip install --quiet "(?P<spec>[^"]+)"')


def colab_requirement(notebook) -> str:
    """The requirement of the install line in the notebook's Colab cell."""
    for cell in notebook.cells:
        if cell.cell_type == "code" and (match := INSTALL.search(cell.source)):
            return match["spec"]
    raise AssertionError("the notebook has no Colab install cell")


def run(*command, cwd=ROOT, **kwargs):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(c) for c in command], cwd=cwd, env=env, check=True,
                          capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def reader_python(tmp_path_factory):
    """A fresh virtual environment with the wheel installed as the Colab cell says."""
    work = tmp_path_factory.mktemp("reader")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", work, ROOT)
    (wheel,) = work.glob("mixed_models_companion-*.whl")
    requirement = colab_requirement(nbformat.read(SITE / "_sources" / f"{PAGES[0]}.ipynb",
                                                  as_version=4))
    name, _, _ = requirement.partition(" @ ")
    venv.create(work / "venv", with_pip=True, clear=True)
    python = work / "venv" / "bin" / "python"
    # nbclient and ipykernel run the notebooks, as Jupyter or Colab itself would.
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--constraint", ROOT / "constraints.txt", f"{name} @ {wheel.as_uri()}",
        "nbclient", "ipykernel")
    return python


def test_the_colab_cell_is_the_configured_install_command():
    from companion.classroom.assignments import colab_install_spec

    for page in PAGES:
        notebook = nbformat.read(SITE / "_sources" / f"{page}.ipynb", as_version=4)
        assert colab_requirement(notebook) == colab_install_spec()


def test_the_installed_package_is_the_wheel_not_the_source(reader_python, tmp_path):
    where = run(reader_python, "-c", "import companion; print(companion.__file__)",
                cwd=tmp_path).stdout
    assert "site-packages" in where and str(ROOT / "src") not in where


@pytest.mark.parametrize("page", PAGES)
def test_a_downloaded_page_runs_in_the_fresh_environment(reader_python, tmp_path, page):
    notebook = nbformat.read(SITE / "_sources" / f"{page}.ipynb", as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    path = tmp_path / "page.ipynb"
    nbformat.write(notebook, path)
    script = textwrap.dedent(f"""
        import nbformat
        from nbclient import NotebookClient
        nb = nbformat.read({str(path)!r}, as_version=4)
        NotebookClient(nb, timeout=600, kernel_name="python3").execute()
        nbformat.write(nb, {str(path)!r})
    """)
    run(reader_python, "-c", script, cwd=tmp_path, timeout=1200)
    executed = nbformat.read(path, as_version=4)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
