"""Exercise pages as notebooks to hand out: ``python -m companion assignments --out DIR
[--solutions] [--language zh]``.

Each page of ``book/exercises/`` (MyST Markdown) becomes ``DIR/<page>.ipynb``. The student
version keeps the exercise and drops every solution (from ``solution-start`` to its
``solution-end``); ``--solutions`` keeps the solutions, under a "Solution" heading. The
gated-directive fences, which only the book renders, become plain headings either way.
With ``--language zh`` the pages are the Chinese edition's (the English pages with their
translations from ``locales/zh``, :mod:`companion.classroom.translation`): the same code,
Chinese prose, headings and captions. The pages live in the repository, not in the
installed package, so this runs from a clone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BOOK_EXERCISES = ROOT / "book" / "exercises"
COLAB_INSTALL_PLACEHOLDER = "{{ colab_install }}"
_FENCE = r"^(`{3,}|:{3,})\{(exercise|solution)-(start|end)\}.*?\n(?:^:.*\n)*^\1\s*\n"
_GATE = re.compile(_FENCE, re.M)
_TRANSLATED_CAPTION = re.compile(r"^```\{translated-caption\} \S+\n(.*?)\n```$", re.M | re.S)
HEADINGS = {"en": {"exercise": "Exercise", "solution": "Solution"},
            "zh": {"exercise": "习题", "solution": "解答"}}
_SOLUTION = re.compile(r"^(`{3,}|:{3,})\{solution-start\}.*?^(`{3,}|:{3,})\{solution-end\}"
                       r".*?\n^\2\s*\n", re.M | re.S)


def exercise_pages(folder: Path = BOOK_EXERCISES) -> list[Path]:
    """The pages that set an exercise, in name order; a clear error outside a clone."""
    pages = sorted(p for p in folder.glob("*.md") if "{exercise-start}" in p.read_text())
    if not pages:
        raise FileNotFoundError(f"no exercise pages in {folder}: run this from a clone of "
                                "the repository (git clone, then pip install -e .)")
    return pages


def colab_install_spec(config_file: Path = ROOT / "_config.yml") -> str:
    """The pip requirement a Colab reader installs: ``colab_install`` of the book's
    configuration, with its ``{repository_url}`` filled in (as the book's build does)."""
    import yaml

    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    repo = config["repository"]["url"].rstrip("/")
    return config["sphinx"]["config"]["colab_install"].format(repository_url=repo)


def page_text(text: str, solutions: bool, language: str = "en") -> str:
    """The page's MyST text for a notebook: solutions cut or kept, gates as headings (in
    ``language``), a translated caption as an italic line, the Colab install command
    filled in."""
    text = _TRANSLATED_CAPTION.sub(lambda m: f"*{' '.join(m.group(1).split())}*", text)
    if COLAB_INSTALL_PLACEHOLDER in text:
        text = text.replace(COLAB_INSTALL_PLACEHOLDER, f'"{colab_install_spec()}"')
    if not solutions:
        text = _SOLUTION.sub("", text)

    def heading(match: re.Match) -> str:
        kind, edge = match.group(2), match.group(3)
        return f"### {HEADINGS[language][kind]}\n\n" if edge == "start" else ""

    return _GATE.sub(heading, text)


@dataclass(frozen=True)
class PageSections:
    """An exercise page cut at its gated directives: the MyST text before the exercise
    (front matter, introduction, set-up cells), the exercise, the solution and the rest."""

    head: str
    exercise: str
    solution: str
    tail: str


def page_sections(text: str) -> PageSections:
    """Cut a page with one exercise and one solution into :class:`PageSections`; a clear
    error names what is missing."""
    fences = {(m.group(2), m.group(3)): m for m in _GATE.finditer(text)}
    order = [("exercise", "start"), ("exercise", "end"), ("solution", "start"),
             ("solution", "end")]
    missing = [f"{kind}-{edge}" for kind, edge in order if (kind, edge) not in fences]
    if missing:
        raise ValueError(f"the page lacks the gated directive(s) {', '.join(missing)}")
    ex_start, ex_end, sol_start, sol_end = (fences[key] for key in order)
    if not ex_start.end() <= ex_end.start() <= sol_start.start() <= sol_end.start():
        raise ValueError("the page's exercise must come before its solution")
    return PageSections(head=text[:ex_start.start()],
                        exercise=text[ex_start.end():ex_end.start()],
                        solution=text[sol_start.end():sol_end.start()],
                        tail=text[sol_end.end():])


def page_source(page: Path, language: str = "en") -> str:
    """An exercise page's MyST text in ``language`` (``ValueError`` when its translation
    is missing or out of date, naming the paragraphs)."""
    if language == "en":
        return page.read_text(encoding="utf-8")
    if language not in HEADINGS:
        raise ValueError(f"no {language!r} edition: choose one of {sorted(HEADINGS)}")
    from companion.classroom.translation import translated_page

    return translated_page(page.relative_to(ROOT).as_posix(), language)


def write_assignments(out: Path, solutions: bool = False, folder: Path = BOOK_EXERCISES,
                      language: str = "en") -> list[Path]:
    """Write one notebook per exercise page into ``out`` (in ``language``); return their
    paths."""
    import jupytext

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for page in exercise_pages(folder):
        text = page_text(page_source(page, language), solutions, language)
        notebook = jupytext.reads(text, fmt="md:myst")
        target = out / f"{page.stem}.ipynb"
        jupytext.write(notebook, target, fmt="ipynb")
        written.append(target)
    return written
