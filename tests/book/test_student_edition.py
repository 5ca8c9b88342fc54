"""The student edition carries no solution of any exercise page: not in the HTML, not in
the downloadable sources (``make student``; ``make book`` for the teacher's side)."""

import pytest
from bs4 import BeautifulSoup

from book_pages import ROOT, SITE, STUDENT_SITE, require_built, toc_pages
from exercise_pages import solution_lines

require_built(SITE, STUDENT_SITE)

PAGES = [p for p in toc_pages() if "{solution-start}" in (ROOT / f"{p}.md").read_text()]


@pytest.mark.parametrize("page", PAGES)
def test_no_solution_in_the_student_edition(page):
    lines = solution_lines((ROOT / f"{page}.md").read_text())
    assert lines, f"{page} has solution blocks but no prose in them"
    student = BeautifulSoup((STUDENT_SITE / f"{page}.html").read_text(), "html.parser")
    teacher = BeautifulSoup((SITE / f"{page}.html").read_text(), "html.parser")
    assert student.select(".solution") == [] and teacher.select(".solution") != []
    assert student.select(".exercise") != []
    source = (STUDENT_SITE / "_sources" / f"{page}.md").read_text()
    assert "solution-start" not in source
    assert not [line for line in lines if line in source]
