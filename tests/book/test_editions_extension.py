"""book/_ext/editions.py without a build: links between editions and figure labels."""

import sys

import pytest

from book_pages import ROOT

sys.path.insert(0, str(ROOT / "book" / "_ext"))
import editions  # noqa: E402  (the book's Sphinx extension)

SVG = ('<svg><text style="font-size: 10px" x="1">Days of sleep</text>'
       '<text x="2">0.5</text><text x="3">Subject 308</text><text x="4">lme4</text>'
       '<text x="5">Fit &amp; data</text></svg>')


@pytest.mark.parametrize("page, link", [("index", "../zh/index.html"),
                                        ("book/lmm", "../../zh/book/lmm.html"),
                                        ("book/exercises/epil",
                                         "../../../zh/book/exercises/epil.html")])
def test_edition_link_climbs_to_the_site_root(page, link):
    assert editions.edition_link(page, "zh") == link


def test_labels_are_translated_and_the_rest_reported(tmp_path):
    labels = tmp_path / "labels.yml"
    labels.write_text("labels:\n  Days of sleep: 睡眠剥夺天数\nkeep: [lme4]\n"
                      "patterns:\n  - {en: 'Subject (\\d+)', zh: '受试者 \\1'}\n",
                      encoding="utf-8")
    exact, patterns = editions.load_labels(labels)
    translated, missing = editions.translate_svg(SVG, exact, patterns)
    assert '<text style="font-size: 10px" x="1">睡眠剥夺天数</text>' in translated
    assert ">受试者 308<" in translated and ">lme4<" in translated and ">0.5<" in translated
    assert missing == {"Fit & data"}
    assert '<text x="5">Fit &amp; data</text>' in translated  # left as it was, still escaped


def test_the_books_labels_file_parses():
    exact, patterns = editions.load_labels(ROOT / "locales" / "zh" / "figure-labels.yml")
    assert exact and all(value.strip() for value in exact.values())
