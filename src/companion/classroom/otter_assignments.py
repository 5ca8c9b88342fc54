"""Exercise pages as autograded assignments: ``python -m companion assignments --format otter
--out DIR`` writes ``DIR/<page>/<page>.ipynb``, an otter-grader 7 master notebook per page.

The master holds the page's introduction and set-up cells, the exercise text, then one
question per entry of :data:`companion.classroom.otter_questions.QUESTIONS`: its part(s) of the
exercise as the prompt, the page's worked solution for it (marked as the solution), a cell
that sets each answer variable, and the public and hidden tests of
:mod:`companion.classroom.otter_tests`. ``otter assign DIR/<page>/<page>.ipynb OUT`` then writes the
student notebook (solutions and hidden tests removed) and the autograder (a zip file for
``otter run`` or Gradescope). The page stays the one source of the solutions.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import nbformat

from companion.classroom.assignments import (BOOK_EXERCISES, COLAB_INSTALL_PLACEHOLDER, ROOT,
                                             colab_install_spec, exercise_pages, page_sections,
                                             page_source)
from companion.classroom.otter_prompts import TEMPLATES, answer_text
from companion.classroom.otter_questions import HELD_OUT, QUESTIONS, SPLIT, Answer, Question
from companion.classroom.otter_tests import expected_values, hidden_tests, public_tests

CLASSROOM_EXTRA = "classroom"  # the package's extra that installs otter-grader
PYTHON_VERSION = "3.11"  # of the grading image on Gradescope
_ITEM = re.compile(r"(\d+)\.\s")


def install_spec() -> str:
    """The requirement a student installs on Colab: the book's ``colab_install`` with the
    classroom extra (otter-grader) added."""
    spec = colab_install_spec()
    name, bracket, rest = spec.partition("[")
    if bracket:
        extras, _, tail = rest.partition("]")
        return f"{name}[{extras},{CLASSROOM_EXTRA}]{tail}"
    name, at, tail = spec.partition(" @ ")
    return f"{name.strip()}[{CLASSROOM_EXTRA}]{at}{tail}"


def exercise_parts(text: str) -> tuple[str, dict[int, str], str]:
    """The exercise's text before its numbered list, each item of the list by its number,
    and the text after the list."""
    intro: list[str] = []
    items: dict[int, list[str]] = {}
    trailer: list[str] = []
    current = None
    for line in text.strip("\n").splitlines():
        item = _ITEM.match(line)
        if item and not trailer:
            current = int(item.group(1))
            items[current] = [line]
        elif current is not None and not trailer and (not line.strip() or line[0] in " \t"):
            items[current].append(line)
        else:
            (intro if current is None else trailer).append(line)
    if list(items) != list(range(1, len(items) + 1)):
        raise ValueError(f"the exercise's parts are numbered {list(items)}, not 1, 2, ...")
    return ("\n".join(intro).strip(), {n: "\n".join(lines).strip() for n, lines in items.items()},
            "\n".join(trailer).strip())


def split_solution(cells: list, questions: tuple[Question, ...], page: str) -> list[list]:
    """The solution's cells shared out to the questions, in order: each question's starts
    at the line that holds its ``starts_at`` (a Markdown cell is cut there)."""
    text = "\n".join(cell.source for cell in cells)
    for question in questions[1:]:
        if question.starts_at is None or text.count(question.starts_at) != 1:
            raise ValueError(f"{page}: question {question.name!r} must start at a text found "
                             f"once in the solution; {question.starts_at!r} is not")
    if questions[0].starts_at is not None:
        raise ValueError(f"{page}: the first question starts with the solution")
    shares: list[list] = [[] for _ in questions]
    index = 0
    for cell in cells:
        following = questions[index + 1:]
        while following and following[0].starts_at in cell.source:
            at = cell.source.index(following[0].starts_at)
            if cell.cell_type == "markdown":
                start = cell.source.rfind("\n", 0, at) + 1
                before = cell.source[:start].strip()
                if before:
                    shares[index].append(nbformat.v4.new_markdown_cell(before))
                cell = nbformat.v4.new_markdown_cell(cell.source[start:])
            index += 1
            following = questions[index + 1:]
        shares[index].append(cell)
    if [q.name for q, share in zip(questions, shares) if not share]:
        raise ValueError(f"{page}: the markers of the questions are out of order")
    return shares


def assignment_config(name: str) -> str:
    """The ``# ASSIGNMENT CONFIG`` cell (YAML): otter assign's settings for one page."""
    import yaml

    config = {"name": name, "requirements": [colab_install_spec()],
              "python_version": PYTHON_VERSION, "init_cell": False, "check_all_cell": True,
              "export_cell": {"pdf": False}, "generate": True,
              "tests": {"files": False, "ok_format": True}}
    return "# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False)


def _raw(text: str):
    return nbformat.v4.new_raw_cell(text.strip())


def _describe(answer: Answer, language: str = "en") -> str:
    words = TEMPLATES[language]
    what = answer_text(answer.name, answer.what, language)
    if answer.kind in (SPLIT, HELD_OUT):
        return words["what"].format(name=answer.name, what=what)
    values = expected_values(answer)
    if not isinstance(values, dict):
        return words["number"].format(name=answer.name, what=what)
    keys = ", ".join(f"`{key}`" for key in values)
    return words["estimates"].format(name=answer.name, what=what, keys=keys)


def prompt(question: Question, items: dict[int, str], language: str = "en") -> str:
    """The Markdown of a question: its heading, its part(s) of the exercise and what to set
    (or that it is graded by hand), in ``language``."""
    missing = [part for part in question.parts if part not in items]
    if missing:
        raise ValueError(f"question {question.name!r} covers part(s) {missing}, which the "
                         f"exercise does not have")
    words = TEMPLATES[language]
    parts = ", ".join(str(part) for part in question.parts)
    label = words["parts" if len(question.parts) > 1 else "part"].format(parts=parts)
    points = words["points" if question.points != 1 else "point"].format(n=question.points)
    lines = [words["question"].format(name=question.name, parts=label, points=points), ""]
    lines += [items[part] + "\n" for part in question.parts]
    if question.manual:
        lines.append(words["manual"])
    else:
        lines.append(words["auto"].format(name=question.name))
        lines += [""] + [_describe(answer, language) for answer in question.answers]
    return "\n".join(lines)


def answer_cell(answer: Answer):
    """The cell that sets ``answer`` in the worked solution; the student sees ``name = ...``."""
    return nbformat.v4.new_code_cell(
        f'""" # BEGIN PROMPT\n{answer.name} = ...\n""" # END PROMPT\n'
        f"# BEGIN SOLUTION NO PROMPT\n{answer.name} = {answer.solution}\n# END SOLUTION")


def as_solution(cell):
    """A code cell of the worked solution with its code between otter's solution markers,
    so that the student notebook shows ``...`` in its place."""
    if cell.cell_type != "code":
        return cell
    return nbformat.v4.new_code_cell(f"# BEGIN SOLUTION\n{cell.source}\n# END SOLUTION",
                                     metadata=dict(cell.metadata))


def question_cells(question: Question, items: dict[int, str], solution: list,
                   heights=None, language: str = "en") -> list:
    """The cells of one question, between ``# BEGIN QUESTION`` and ``# END QUESTION``."""
    import yaml

    config = {"name": question.name, "points": question.points}
    config |= {"manual": True} if question.manual else {"all_or_nothing": True}
    cells = [_raw("# BEGIN QUESTION\n" + yaml.safe_dump(config, sort_keys=False)),
             nbformat.v4.new_markdown_cell(prompt(question, items, language)),
             _raw("# BEGIN SOLUTION"), *(as_solution(cell) for cell in solution)]
    cells += [answer_cell(a) for a in question.answers if a.solution is not None]
    cells.append(_raw("# END SOLUTION"))
    if not question.manual:
        cells.append(_raw("# BEGIN TESTS"))
        for answer in question.answers:
            cells += [nbformat.v4.new_code_cell(t) for t in public_tests(answer)]
        for answer in question.answers:
            cells += [nbformat.v4.new_code_cell(t) for t in hidden_tests(answer, heights)]
        cells.append(_raw("# END TESTS"))
    return cells + [_raw("# END QUESTION")]


def _cells(text: str) -> tuple[list, dict]:
    import jupytext

    notebook = jupytext.reads(text, fmt="md:myst")
    cells = []
    for cell in notebook.cells:
        make = {"code": nbformat.v4.new_code_cell, "markdown": nbformat.v4.new_markdown_cell,
                "raw": nbformat.v4.new_raw_cell}[cell.cell_type]
        cells.append(make(cell.source, metadata=dict(cell.metadata)))
    return cells, dict(notebook.metadata)


def translated_questions(page: Path, questions: tuple[Question, ...],
                         language: str) -> tuple[Question, ...]:
    """The questions with each ``starts_at`` moved to where its paragraph starts in the
    ``language`` edition of the page."""
    if language == "en":
        return questions
    from companion.classroom.translation import translated_opening

    name = page.relative_to(ROOT).as_posix()
    return tuple(q if q.starts_at is None else
                 replace(q, starts_at=translated_opening(name, language, q.starts_at))
                 for q in questions)


def master_notebook(page: Path, questions: tuple[Question, ...], language: str = "en"):
    """The otter-grader master notebook of an exercise page, in ``language``."""
    questions = translated_questions(page, questions, language)
    text = page_source(page, language).replace(COLAB_INSTALL_PLACEHOLDER,
                                               f'"{install_spec()}"')
    sections = page_sections(text)
    head, metadata = _cells(sections.head)
    intro, items, trailer = exercise_parts(sections.exercise)
    solution, _ = _cells(sections.solution)
    shares = split_solution(solution, questions, page.name)
    heights = None
    if any(a.kind in (SPLIT, HELD_OUT) for q in questions for a in q.answers):
        from companion.datasets import volcano_matrix

        heights = volcano_matrix()
    init = nbformat.v4.new_code_cell(
        '# otter-grader\'s client: grader.check("name") runs the public tests of a question\n'
        f'import otter\n\ngrader = otter.Notebook("{page.stem}.ipynb")')
    heading = TEMPLATES[language]["exercise"]
    exercise = "\n\n".join(part for part in (heading, intro, trailer) if part)
    cells = [_raw(assignment_config(page.stem)), *head, init,
             nbformat.v4.new_markdown_cell(exercise)]
    for question, share in zip(questions, shares):
        cells += question_cells(question, items, share, heights, language)
    kernelspec = metadata.get("kernelspec") or {"display_name": "Python 3 (ipykernel)",
                                                "language": "python", "name": "python3"}
    notebook = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": kernelspec, "language_info": {"name": "python"}})
    nbformat.validate(notebook)
    return notebook


def write_otter_sources(out: Path, folder: Path = BOOK_EXERCISES,
                        questions: dict[str, tuple[Question, ...]] | None = None,
                        language: str = "en") -> list[Path]:
    """Write ``out/<page>/<page>.ipynb``, the master notebook of each exercise page (in
    ``language``); return their paths. Every page needs an entry in ``questions`` (by
    default :data:`~companion.classroom.otter_questions.QUESTIONS`)."""
    questions = QUESTIONS if questions is None else questions
    pages = exercise_pages(folder)
    unknown = [page.stem for page in pages if page.stem not in questions]
    if unknown:
        raise ValueError(f"no questions defined for the exercise page(s) {unknown}: add "
                         "them to companion.classroom.otter_questions.QUESTIONS")
    written = []
    for page in pages:
        target = out / page.stem / f"{page.stem}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(master_notebook(page, questions[page.stem], language), target)
        written.append(target)
    return written
