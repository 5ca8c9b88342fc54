"""The student editions (English and Chinese) carry no solution of any exercise page: not
in the HTML, not in the downloadable sources (``make student``; ``make book`` for the
teacher's side)."""

import pytest
from bs4 import BeautifulSoup

from book_pages import EDITIONS, ROOT, STUDENT_EDITIONS, require_built, toc_pages
from exercise_pages import solution_lines

require_built(*EDITIONS.values(), *STUDENT_EDITIONS.values())

PAGES = [p for p in toc_pages() if "{solution-start}" in (ROOT / f"{p}.md").read_text()]
# the MyST text each edition was built from (tools/build_book.py writes the Chinese pages)
SOURCES = {"en": ROOT, "zh": ROOT / "_build" / "zh" / "src"}


@pytest.mark.parametrize("language", EDITIONS)
@pytest.mark.parametrize("page", PAGES)
def test_no_solution_in_the_student_edition(language, page):
    lines = solution_lines((SOURCES[language] / f"{page}.md").read_text(encoding="utf-8"))
    assert lines, f"{page} has solution blocks but no prose in them"
    student_site, site = STUDENT_EDITIONS[language], EDITIONS[language]
    student = BeautifulSoup((student_site / f"{page}.html").read_text(), "html.parser")
    teacher = BeautifulSoup((site / f"{page}.html").read_text(), "html.parser")
    assert student.select(".solution") == [] and teacher.select(".solution") != []
    assert student.select(".exercise") != []
    assert student.html["lang"] == teacher.html["lang"]
    source = (student_site / "_sources" / f"{page}.md").read_text(encoding="utf-8")
    assert "solution-start" not in source
    assert not [line for line in lines if line in source]
