"""The autograded assignments (``python -m companion assignments --format otter``): the
master notebooks, ``otter assign``, and ``otter run`` on the reference solutions (100%), on
the untouched student notebooks (0%) and on a notebook with one wrong answer (exactly that
question's points lost), for every exercise."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from companion import load_dataset, volcano_matrix
from companion.classroom.assignments import BOOK_EXERCISES, exercise_pages
from companion.classroom.otter_assignments import (exercise_parts, install_spec, split_solution,
                                                   write_otter_sources)
from companion.classroom.otter_questions import ESTIMATES, HELD_OUT, NUMBER, QUESTIONS, Question
from companion.classroom.otter_tests import expected_values, hidden_tests, public_tests

if importlib.util.find_spec("otter") is None:  # the classroom extra
    if os.environ.get("CI"):
        raise RuntimeError("CI needs otter-grader: pip install -e '.[classroom]'") from None
    pytest.skip("otter-grader is not installed: pip install -e '.[classroom]'",
                allow_module_level=True)

EXERCISES = [page.stem for page in exercise_pages()] if BOOK_EXERCISES.is_dir() else []


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    out = tmp_path_factory.mktemp("otter")
    done = subprocess.run([sys.executable, "-m", "companion", "assignments", "--format",
                           "otter", "--out", str(out)], capture_output=True, text=True,
                          check=True)
    assert f"wrote {len(EXERCISES)} otter-grader master notebooks" in done.stdout
    return out


@pytest.fixture(scope="module")
def assigned(sources):
    """``otter assign`` of each master (once): its student and autograder folders."""
    seconds = {}

    def assign(exercise: str) -> Path:
        dist = sources / exercise / "dist"
        if not dist.is_dir():
            start = time.perf_counter()
            otter_cli("assign", sources / exercise / f"{exercise}.ipynb", dist,
                      "--no-run-tests", "--no-pdfs")
            seconds[exercise] = time.perf_counter() - start
        return dist

    assign.seconds = seconds
    return assign


def otter_cli(*args) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "otter", *map(str, args)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"otter {args[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done


def grade(notebook: Path, dist: Path, out: Path) -> dict[str, tuple[float, float]]:
    """``otter run`` of one notebook: {question: (score, possible)}."""
    out.mkdir()
    (autograder,) = (dist / "autograder").glob("*-autograder_*.zip")
    otter_cli("run", "-a", autograder, "-o", out, "--no-logo", notebook)
    tests = json.loads((out / "results.json").read_text())["tests"]
    return {t["name"]: (t["score"], t["max_score"]) for t in tests if "max_score" in t}


def autograded(exercise: str) -> list[Question]:
    return [q for q in QUESTIONS[exercise] if not q.manual]


def wrong(answer) -> str:
    """Code that makes ``answer`` wrong: every number 10% off."""
    name = answer.name
    if answer.kind == ESTIMATES:
        return f"{name} = {{k: 1.1 * v for k, v in dict({name}).items()}}"
    if answer.kind == NUMBER:
        return f"{name} = 1.1 * {name}"
    if answer.kind == HELD_OUT:
        return f"{name} = {name}.assign(prediction=1.1 * {name}['prediction'])"
    raise ValueError(f"no wrong version of a {answer.kind} answer")


def with_one_wrong_answer(notebook: Path, question: Question, target: Path) -> Path:
    """The reference solution with the first answer of ``question`` made wrong just before
    the question is checked."""
    nb = nbformat.read(notebook, as_version=4)
    (index,) = [i for i, c in enumerate(nb.cells)
                if c.cell_type == "code" and c.source == f'grader.check("{question.name}")']
    nb.cells.insert(index, nbformat.v4.new_code_cell(wrong(question.answers[0])))
    target.mkdir()
    nbformat.write(nb, target / notebook.name)
    return target / notebook.name


# --- the master notebooks -------------------------------------------------------------

def test_every_exercise_page_has_questions():
    assert sorted(EXERCISES) == sorted(QUESTIONS)
    assert set(EXERCISES) == {"volcano", "plantgrowth", "epil", "puromycin", "topo"}
    for exercise in EXERCISES:
        assert autograded(exercise), f"{exercise} has no autograded question"


def raw(nb, start: str) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "raw" and c.source.startswith(start)]


@pytest.mark.parametrize("exercise", EXERCISES)
def test_master_notebook_in_otter_format(sources, exercise):
    nb = nbformat.read(sources / exercise / f"{exercise}.ipynb", as_version=4)
    assert nb.cells[0].cell_type == "raw"
    assert nb.cells[0].source.startswith("# ASSIGNMENT CONFIG")
    assert f"name: {exercise}" in nb.cells[0].source
    questions = QUESTIONS[exercise]
    assert len(raw(nb, "# BEGIN QUESTION")) == len(raw(nb, "# END QUESTION")) == len(questions)
    assert len(raw(nb, "# BEGIN TESTS")) == len(autograded(exercise))
    text = nbformat.writes(nb)
    assert "{solution-start}" not in text and "{exercise-start}" not in text
    assert "{{ colab_install }}" not in text and "classroom]" in text
    for question in questions:
        assert f"name: {question.name}" in text
    hidden = [c.source for c in nb.cells if c.cell_type == "code" and "hidden: true" in c.source]
    for question in autograded(exercise):
        for answer in question.answers:
            if answer.kind in (ESTIMATES, NUMBER):
                values = expected_values(answer)
                values = values.values() if isinstance(values, dict) else [values]
                assert all(any(repr(v) in cell for cell in hidden) for v in values)


@pytest.mark.parametrize("exercise", EXERCISES)
def test_otter_assign_hides_solutions_and_hidden_values(assigned, exercise):
    dist = assigned(exercise)
    assert list((dist / "autograder").glob(f"{exercise}-autograder_*.zip"))
    student_nb = nbformat.read(dist / "student" / f"{exercise}.ipynb", as_version=4)
    student = "\n".join(cell.source for cell in student_nb.cells)
    teacher = "\n".join(cell.source for cell in nbformat.read(
        dist / "autograder" / f"{exercise}.ipynb", as_version=4).cells)
    page = (BOOK_EXERCISES / f"{exercise}.md").read_text()
    solution_code = [line for line in code_lines(page.split("{solution-start}")[1])
                     if " = " in line and len(line) > 30]
    assert solution_code and not [line for line in solution_code if line in student]
    assert all(line in teacher for line in solution_code)
    for question in autograded(exercise):
        assert f'grader.check("{question.name}")' in student
        for answer in question.answers:
            if answer.solution is not None:
                assert f"{answer.name} = ..." in student
            if answer.kind in (ESTIMATES, NUMBER):
                values = expected_values(answer)
                values = values.values() if isinstance(values, dict) else [values]
                assert not [v for v in values if repr(v) in nbformat.writes(student_nb)]
    tests = student_nb.metadata["otter"]["tests"]
    cases = [case for test in tests.values() for case in test["suites"][0]["cases"]]
    assert cases and not [case for case in cases if case["hidden"]]


def code_lines(text: str) -> list[str]:
    """The lines of the code cells in MyST text."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```{code-cell}"):
            inside = True
        elif line.startswith("```"):
            inside = False
        elif inside and not line.startswith(":"):
            lines.append(line)
    return lines


# --- the four grading cases ---------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("exercise", EXERCISES)
def test_grading(assigned, exercise, tmp_path):
    """Reference solutions 100%, untouched student notebook 0%, one wrong answer: exactly
    that question's points lost."""
    dist = assigned(exercise)
    points = {q.name: q.points for q in autograded(exercise)}
    possible = sum(points.values())
    solution = dist / "autograder" / f"{exercise}.ipynb"
    times = {"assign": assigned.seconds.get(exercise, 0.0)}

    def timed(case, notebook):
        start = time.perf_counter()
        scores = grade(notebook, dist, tmp_path / case)
        times[case] = time.perf_counter() - start
        assert {q: p for q, (_, p) in scores.items()} == points, case
        return {q: s for q, (s, _) in scores.items()}

    assert timed("solutions", solution) == points
    assert sum(timed("untouched", dist / "student" / f"{exercise}.ipynb").values()) == 0
    question = autograded(exercise)[-1]
    one_wrong = with_one_wrong_answer(solution, question, tmp_path / "wrong-notebook")
    assert timed("one-wrong", one_wrong) == points | {question.name: 0}
    print(f"{exercise}: {possible} points; wrong answer in {question.name!r} "
          f"({question.points} points); seconds: "
          + ", ".join(f"{case} {s:.1f}" for case, s in times.items()))


# --- the test cells themselves ----------------------------------------------------------

def run_tests(cells: list[str], env: dict) -> None:
    """Run test cells as otter does, in one namespace (the test config is a string)."""
    for cell in cells:
        exec(cell, env)


@pytest.mark.parametrize("answer", [a for q in QUESTIONS["epil"] + QUESTIONS["puromycin"]
                                    for a in q.answers], ids=lambda a: a.name)
def test_estimate_tests_pass_on_r_and_fail_off_it(answer):
    expected = expected_values(answer)
    right = expected if answer.kind == NUMBER else pd.Series(expected)
    run_tests(public_tests(answer) + hidden_tests(answer), {answer.name: right})
    run_tests(public_tests(answer), {answer.name: 1.1 * right})
    with pytest.raises(AssertionError, match="not within 0.1% of R"):
        run_tests(hidden_tests(answer), {answer.name: 1.1 * right})
    if answer.kind == ESTIMATES:
        with pytest.raises(AssertionError, match="should have the keys"):
            run_tests(public_tests(answer), {answer.name: right.iloc[1:]})


def test_volcano_tests_score_held_out_predictions():
    heights = volcano_matrix()
    cells = load_dataset("volcano")
    order = np.random.default_rng(1).permutation(len(cells))
    train, test = cells.iloc[order[:1000]], cells.iloc[order[1000:]]
    (split,), (held,) = (q.answers for q in autograded("volcano"))
    good = test[["row", "col"]].assign(prediction=test["height"] + 1.0)
    env = {"train": train, "test": test, "held_out": good}
    run_tests(public_tests(split) + hidden_tests(split, heights), env)
    run_tests(public_tests(held) + hidden_tests(held, heights), env)
    with pytest.raises(AssertionError, match="RMSE is 6.0 m"):
        run_tests(hidden_tests(held, heights), env | {"held_out": good.assign(
            prediction=test["height"] + 6.0)})
    with pytest.raises(AssertionError, match="must not be training cells"):
        run_tests(hidden_tests(held, heights), env | {"held_out": train[["row", "col"]].assign(
            prediction=train["height"])})
    with pytest.raises(AssertionError, match="each cell of the grid once"):
        run_tests(hidden_tests(split, heights), env | {"test": test.iloc[1:]})


# --- building blocks and errors ---------------------------------------------------------

def test_install_spec_adds_the_classroom_extra():
    assert "classroom" in install_spec() and install_spec().count("[") == 1


def test_exercise_parts_reads_the_numbered_list():
    intro, items, trailer = exercise_parts("Some data.\n\n1. Fit it.\n2. Plot it:\n\n"
                                           "   > ```r\n   > plot(x)\n   > ```\n\nThen check.")
    assert intro == "Some data."
    assert items == {1: "1. Fit it.", 2: "2. Plot it:\n\n   > ```r\n   > plot(x)\n   > ```"}
    assert trailer == "Then check."
    with pytest.raises(ValueError, match="numbered"):
        exercise_parts("1. One.\n3. Three.")


def test_a_question_marker_must_be_found_once():
    cells = [nbformat.v4.new_markdown_cell("**First.** Text.\n\n**Second.** More."),
             nbformat.v4.new_code_cell("x = 1")]
    shares = split_solution(cells, (Question("a", (1,), 1, None),
                                    Question("b", (2,), 1, "**Second.**")), "demo.md")
    assert [[c.source for c in share] for share in shares] == [
        ["**First.** Text."], ["**Second.** More.", "x = 1"]]
    with pytest.raises(ValueError, match="'b' must start at a text found once"):
        split_solution(cells, (Question("a", (1,), 1, None),
                               Question("b", (2,), 1, "**Third.**")), "demo.md")


def test_a_page_without_questions_is_named(tmp_path):
    with pytest.raises(ValueError, match="no questions defined for the exercise page"):
        write_otter_sources(tmp_path / "out", questions={})


def test_solutions_flag_is_refused_with_the_otter_format(tmp_path):
    done = subprocess.run([sys.executable, "-m", "companion", "assignments", "--format",
                           "otter", "--solutions", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--solutions" in done.stderr


@pytest.fixture(scope="module")
def chinese_sources(tmp_path_factory):
    out = tmp_path_factory.mktemp("otter-zh")
    return {path.parent.name: path for path in write_otter_sources(out, language="zh")}


@pytest.mark.parametrize("exercise", EXERCISES)
def test_chinese_assignment_grades_as_the_english_one(sources, chinese_sources, exercise):
    """The same questions, points, solutions and tests (the code and otter's raw cells are
    identical, so grading is too); the text around them is Chinese."""
    english = nbformat.read(sources / exercise / f"{exercise}.ipynb", as_version=4)
    chinese = nbformat.read(chinese_sources[exercise], as_version=4)
    assert [(c.cell_type, c.source) for c in chinese.cells if c.cell_type != "markdown"] == \
        [(c.cell_type, c.source) for c in english.cells if c.cell_type != "markdown"]
    prose = "\n".join(c.source for c in chinese.cells if c.cell_type == "markdown")
    assert "## 习题" in prose and prose.count("### 问题 `") == len(QUESTIONS[exercise])
    assert "Question `" not in prose and "*Autograded:*" not in prose
    assert len(re.findall(r"[\u3400-\u9fff]", prose)) > 500
