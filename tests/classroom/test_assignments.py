"""The exercise notebooks for teachers (``python -m companion assignments``) and the
self-checks (``companion.check``)."""

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

import companion
from companion import check
from companion.classroom.assignments import (BOOK_EXERCISES, page_source, page_text,
                                             write_assignments)
from exercise_pages import solution_lines

ROOT = Path(__file__).resolve().parents[2]
DEMO = """---
jupytext:
  text_representation: {extension: .md, format_name: myst, format_version: 0.13}
kernelspec: {display_name: Python 3 (ipykernel), language: python, name: python3}
---

# Demo

```{code-cell} ipython3
x = 2
```

````{exercise-start}
:label: ex-demo
````

What is `x` squared?

````{exercise-end}
````

````{solution-start} ex-demo
:class: dropdown
````

SECRET-ANSWER: square it.

```{code-cell} ipython3
assert x ** 2 == 4
```

````{solution-end}
````
"""


def execute(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()


@pytest.fixture()
def demo_folder(tmp_path):
    folder = tmp_path / "exercises"
    folder.mkdir()
    (folder / "demo.md").write_text(DEMO)
    return folder


def test_student_version_drops_the_solution_and_keeps_the_exercise(demo_folder, tmp_path):
    student = write_assignments(tmp_path / "student", folder=demo_folder)[0]
    teacher = write_assignments(tmp_path / "teacher", solutions=True, folder=demo_folder)[0]
    assert "SECRET-ANSWER" not in student.read_text()
    assert "What is `x` squared?" in student.read_text()
    assert "SECRET-ANSWER" in teacher.read_text()
    assert "solution-start" not in teacher.read_text()  # the book's fences become headings
    for path in (student, teacher):
        execute(path)


def test_outside_a_clone_the_message_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="clone of the repository"):
        write_assignments(tmp_path / "out", folder=tmp_path / "nowhere")


PAGES = sorted(BOOK_EXERCISES.glob("*.md")) if BOOK_EXERCISES.is_dir() else []
EXERCISE_PAGES = [p for p in PAGES if "{solution-start}" in p.read_text()]


@pytest.mark.parametrize("page", EXERCISE_PAGES, ids=lambda p: p.stem)
def test_each_exercise_page_exports_cleanly(page, tmp_path):
    text = page.read_text()
    student = page_text(text, solutions=False)
    assert "{solution" not in student and "{exercise" not in student
    assert not any(line in student for line in solution_lines(text))
    assert all(line in page_text(text, solutions=True) for line in solution_lines(text))


@pytest.mark.slow
def test_command_line_writes_every_exercise(tmp_path):
    assert EXERCISE_PAGES, f"no exercise pages in {BOOK_EXERCISES}"
    done = subprocess.run([sys.executable, "-m", "companion", "assignments", "--out",
                           str(tmp_path)], capture_output=True, text=True, check=True)
    assert f"wrote {len(EXERCISE_PAGES)} notebooks without solutions" in done.stdout
    for path in sorted(tmp_path.glob("*.ipynb")):
        execute(path)  # the student versions run as handed out


def test_teacher_notebooks_are_the_pages_the_build_executed(tmp_path):
    """The teacher versions hold exactly the code cells of the pages, which the book build
    executed without error (it fails on any cell error)."""
    executed = ROOT / "_build" / "en" / "_build" / "jupyter_execute" / "book" / "exercises"
    if not executed.is_dir():
        if os.environ.get("CI"):
            raise RuntimeError("the exercise pages are not built: run `make book` first")
        pytest.skip("the exercise pages are not built: run `make book`")
    for path in write_assignments(tmp_path, solutions=True):
        ours = [c.source for c in nbformat.read(path, 4).cells if c.cell_type == "code"]
        built = nbformat.read(executed / path.name, 4)
        assert ours == [c.source for c in built.cells if c.cell_type == "code"], path.name
        errors = [o for c in built.cells if c.cell_type == "code" for o in c.outputs
                  if o.output_type == "error"]
        assert not errors, path.name


def test_chinese_notebooks_have_the_same_code_and_chinese_prose(tmp_path):
    english = write_assignments(tmp_path / "en", solutions=True)
    chinese = write_assignments(tmp_path / "zh", solutions=True, language="zh")
    students = write_assignments(tmp_path / "zh-students", language="zh")
    assert [p.name for p in chinese] == [p.name for p in english]
    for en_path, zh_path, student_path in zip(english, chinese, students):
        en, zh = nbformat.read(en_path, 4), nbformat.read(zh_path, 4)
        code = [[c.source for c in nb.cells if c.cell_type == "code"] for nb in (en, zh)]
        assert code[0] == code[1], zh_path.name
        prose = "\n".join(c.source for c in zh.cells if c.cell_type == "markdown")
        assert "### 习题" in prose and "### 解答" in prose and "{translated-caption}" not in prose
        assert len(re.findall(r"[\u3400-\u9fff]", prose)) > 500, zh_path.name
        student = "\n".join(c.source for c in nbformat.read(student_path, 4).cells)
        zh_page = page_source(BOOK_EXERCISES / zh_path.with_suffix(".md").name, "zh")
        assert "### 解答" not in student
        assert not [line for line in solution_lines(zh_page) if line in student]


def test_unknown_language_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no 'fr' edition"):
        write_assignments(tmp_path, language="fr")


# --- self-checks -----------------------------------------------------------------------------

def test_checks_accept_the_reference_and_reject_a_wrong_answer():
    epil = companion.load_dataset("epil")
    fixef = companion.glmer("y ~ lbase * trt + lage + V4 + (1 | subject)", epil,
                            family="poisson").fixef
    assert check.epil(fixef)
    wrong = fixef.copy()
    wrong["lbase"] *= 1.05
    verdict = check.epil(wrong)
    assert not verdict and "lbase (too high)" in repr(verdict)
    assert f"{fixef['lbase']:.4f}"[:5] not in repr(verdict)  # never the answer
    puromycin = {f"{p}_{s}": companion.reference(f"puromycin_nls_{s}")["coef"][p]
                 for s in ("treated", "untreated") for p in ("Vm", "K")}
    assert check.puromycin(puromycin)
    assert not check.puromycin(puromycin | {"K_untreated": 0.06})


def test_checks_name_bad_answers():
    with pytest.raises(ValueError, match="missing"):
        check.puromycin({"Vm_treated": 212.7})
    with pytest.raises(TypeError, match="mapping"):
        check.topo([839.4, 56.1])
    with pytest.raises(TypeError, match="number"):
        check.topo({"mean": "high", "sigma": 56})
    with pytest.raises(AttributeError, match="the exercises are: volcano"):
        check.volcanoes  # noqa: B018
    with pytest.raises(ValueError, match="at least 50"):
        check.volcano([1], [1], [100.0])


def test_volcano_check_scores_held_out_predictions():
    heights = companion.volcano_matrix()
    rng = np.random.default_rng(1)
    rows, cols = rng.integers(0, 87, 200), rng.integers(0, 61, 200)
    assert check.volcano(rows, cols, heights[rows, cols] + rng.normal(0, 1, 200))
    assert not check.volcano(rows, cols, np.full(200, heights.mean()))


def test_topo_and_plantgrowth_checks_read_the_references():
    topo = companion.reference("topo_gls_gauss_reml")
    assert check.topo({"mean": topo["coef"]["(Intercept)"], "sigma": topo["sigma"]})
    plant = companion.lmer("weight ~ 1 + (1 | group)", companion.load_dataset("PlantGrowth"))
    assert check.plantgrowth({"intercept": plant.fixef.iloc[0],
                              "sd_group": plant.varcorr.sdcor.iloc[0], "sigma": plant.sigma})
    assert json.dumps(check.EXPECTED["topo"][0])  # the description is plain text


def test_self_checks_say_they_are_not_a_grading_tool():
    assert "not a grading tool" in check.__doc__
    for name in check.EXERCISES:
        assert "not a grading tool" in getattr(check, name).__doc__, name


def test_notebooks_format_is_the_default(tmp_path):
    for folder, extra in (("default", []), ("notebooks", ["--format", "notebooks"])):
        subprocess.run([sys.executable, "-m", "companion", "assignments", "--out",
                        str(tmp_path / folder), *extra], capture_output=True, check=True)
    default = sorted(p.name for p in (tmp_path / "default").iterdir())
    assert default == sorted(p.name for p in (tmp_path / "notebooks").iterdir())
    for name in default:  # the same cells (their random ids aside)
        cells = [[(c.cell_type, c.source, c.metadata) for c in
                  nbformat.read(tmp_path / folder / name, as_version=4).cells]
                 for folder in ("default", "notebooks")]
        assert cells[0] == cells[1], name
