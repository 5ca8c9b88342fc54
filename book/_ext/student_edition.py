"""The student edition: with ``hide_solutions = True`` every solution leaves the build.

sphinx-exercise's own switch drops the ``solution-start`` directive but leaves the rest of a
gated solution (its text, its code cells and the ``solution-end`` node) in the page, which
then fails to render. Here ``solution-start`` leaves a marker instead, and a transform cuts
everything from the marker to the matching ``solution-end``. The page's downloadable
sources (``_sources/*.md`` and the executed ``*.ipynb``) are cut the same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx_exercise.directive import SolutionStartDirective
from sphinx_exercise.nodes import solution_end_node

_BARE_FENCE = re.compile(r"^\s*(`{3,}|:{3,})\s*$")


class solution_cut(nodes.Element):  # noqa: N801 - docutils names nodes in lower case
    """Where a hidden solution starts."""


class StudentSolutionStart(SolutionStartDirective):
    def run(self):
        shown = super().run()  # also records the start for sphinx-exercise's checks
        return [solution_cut()] if self.config.hide_solutions else shown


class CutHiddenSolutions(SphinxTransform):
    """Remove each hidden solution: the marker, its content and its ``solution-end``."""

    default_priority = 5  # before sphinx-exercise merges gated directives (10)

    def apply(self):
        for marker in list(self.document.findall(solution_cut)):
            siblings = marker.parent.children
            start = siblings.index(marker)
            end = next(i for i in range(start, len(siblings))
                       if isinstance(siblings[i], solution_end_node))
            del siblings[start:end + 1]


def without_solutions(lines: list[str], inside: bool = False) -> tuple[list[str], bool]:
    """Drop the lines of gated solutions from MyST text; ``inside`` carries across cells."""
    kept, closing = [], False
    for line in lines:
        if not inside:
            if "{solution-start}" in line:
                inside, closing = True, False
            else:
                kept.append(line)
        elif "{solution-end}" in line:
            closing = True
        elif closing and _BARE_FENCE.match(line):
            inside = closing = False
    return kept, inside


def _cut_notebook(path: Path) -> None:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells, inside = [], False
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            lines, inside_after = without_solutions(cell["source"] if isinstance(
                cell["source"], list) else cell["source"].splitlines(keepends=True), inside)
            if "".join(lines).strip():
                cells.append({**cell, "source": lines})
            inside = inside_after
        elif not inside:
            cells.append(cell)
    notebook["cells"] = cells
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False), encoding="utf-8")


def cut_downloads(app, exception):
    """Cut the solutions out of the page sources the student site offers for download."""
    if exception is not None or not app.config.hide_solutions:
        return
    sources = Path(app.outdir) / "_sources"
    for path in sources.rglob("*.md"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(without_solutions(lines)[0]), encoding="utf-8")
    for path in sources.rglob("*.ipynb"):
        _cut_notebook(path)


def setup(app):
    app.add_directive("solution-start", StudentSolutionStart, override=True)
    app.add_node(solution_cut)
    app.add_transform(CutHiddenSolutions)
    app.connect("build-finished", cut_downloads)
