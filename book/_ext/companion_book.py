"""Sphinx glue for the book: MathJax served from the site itself, downloadable notebooks
with their outputs, Colab links that open the executed notebook instead of the Markdown
source (Colab reads only ``.ipynb``), and the one install command a Colab reader runs.

The install command is defined once, as ``colab_install`` in ``_config.yml`` (its
``{repository_url}`` is the book's repository). Each notebook page's first cell says
``%pip install --quiet {{ colab_install }}``; the placeholder is filled in as the page is
read, so the executed and downloadable notebooks carry the configured command."""

from __future__ import annotations

import shutil
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

# The MathJax 3 parts the pages load: the entry script and what it fetches on demand.
_MATHJAX_PARTS = ["tex-mml-chtml.js", "a11y", "adaptors", "input", "output", "sre", "ui"]
# The executed notebooks are published with each edition (``<language>/_sources/<page>.ipynb``);
# a site deployed with ``ghp-import -n -p -f _build/html`` puts them on this branch.
PUBLISHED_BRANCH = "gh-pages"
COLAB_INSTALL_PLACEHOLDER = "{{ colab_install }}"


def colab_install_spec(config) -> str:
    """The pip requirement of the Colab install cell, from the book's configuration."""
    repo = config.html_theme_options.get("repository_url", "").rstrip("/")
    return config.colab_install.format(repository_url=repo)


def _fill_colab_install(app, docname, source):
    """Put the configured install command where a page has the placeholder."""
    if COLAB_INSTALL_PLACEHOLDER in source[0]:
        source[0] = source[0].replace(COLAB_INSTALL_PLACEHOLDER,
                                      f'"{colab_install_spec(app.config)}"')


def _copy_mathjax(app, exception):
    """Copy MathJax (from the django-static-mathjax wheel) into ``_static/mathjax``."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    stamp = target / ".version"
    wanted = version("django-static-mathjax")
    if stamp.exists() and stamp.read_text() == wanted:
        return
    source = files("mathjax") / "static" / "mathjax" / "es5"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for part in _MATHJAX_PARTS:
        origin = Path(str(source / part))
        if origin.is_dir():
            shutil.copytree(origin, target / part)
        else:
            shutil.copy2(origin, target / part)
    stamp.write_text(wanted)


def _outputs_into_download(app, doctree):
    """Put the cached outputs into the page's notebook in ``jupyter_execute``.

    myst-nb 1.4 writes that notebook (which the theme offers for download) with outputs only
    when it executed the page in this build; a page served from jupyter-cache would be
    offered without any. Merge the cached outputs back in.
    """
    config = app.env.mystnb_config
    path = Path(app.outdir).parent / "jupyter_execute" / f"{app.env.docname}.ipynb"
    if config.execution_mode != "cache" or not path.exists():
        return
    import nbformat
    from jupyter_cache import get_cache

    notebook = nbformat.read(path, as_version=4)
    if any(cell.get("outputs") for cell in notebook.cells):
        return
    try:
        _, merged = get_cache(config.execution_cache_path).merge_match_into_notebook(notebook)
    except KeyError:  # not cached: the page has no code, or its run failed
        return
    nbformat.write(merged, path)


def _colab_opens_notebook(app, pagename, templatename, context, doctree):
    """Point the Colab button at the published executed notebook of the page, in the
    page's edition (``edition_language``, see editions.py)."""
    repo = app.config.html_theme_options.get("repository_url", "").rstrip("/")
    org_repo = repo.removeprefix("https://github.com/")
    for button in _walk(context.get("header_buttons", [])):
        if button.get("text") == "Colab":
            button["url"] = (
                f"https://colab.research.google.com/github/{org_repo}/blob/"
                f"{PUBLISHED_BRANCH}/{app.config.edition_language}/_sources/{pagename}.ipynb"
            )


def _walk(buttons):
    for button in buttons:
        yield button
        yield from _walk(button.get("buttons", []))


def setup(app):
    app.add_config_value("colab_install", "", "env")
    app.connect("source-read", _fill_colab_install)
    app.connect("doctree-read", _outputs_into_download)
    app.connect("html-page-context", _colab_opens_notebook, priority=900)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
