"""companion.classroom.translation: pages cut into blocks, translations recorded against
their English, drift found and named, and the edition's page assembled with the English
code cells (so that the execution cache serves both editions)."""

import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache

from companion.classroom import translation

ROOT = Path(__file__).resolve().parents[2]

PAGE = """---
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A page

Some prose with a glued {glue:text}`value:.2f` and a reference to {numref}`fig-x`.

```{code-cell} ipython3
:mystnb:
:  figure:
:    caption: A random intercept per group.
:    name: fig-x
x = 1

y = 2
```

$$
a = b
$$

````{exercise-start}
:label: ex-one
````

1. Fit the random intercept model.
2. Compare.

```{note}
A note with two paragraphs.

The second one.
```
"""


@pytest.fixture
def project(tmp_path):
    """A page, a glossary and an empty place for translations."""
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "page.md").write_text(PAGE, encoding="utf-8")
    locales = tmp_path / "locales"
    (locales / "zh").mkdir(parents=True)
    (locales / "zh" / "glossary.yml").write_text(
        "terms:\n  - {en: random intercept, zh: 随机截距}\n", encoding="utf-8")
    return tmp_path, locales


def _translate_all(root, locales, words="中文"):
    """Fill every todo segment with a 'translation' that keeps the markup."""
    translation_file = translation.translation_path("book/page.md", "zh", locales)
    translation_file.parent.mkdir(parents=True, exist_ok=True)
    translation_file.write_text(translation.updated_translation("book/page.md", "zh", root,
                                                                locales), encoding="utf-8")
    text = translation_file.read_text(encoding="utf-8").replace("<!-- todo ", "<!-- ")
    text = re.sub(r"(?m)^(#+ |\d\. )?(?=[A-Z])",
                  lambda m: (m.group(1) or "") + f"{words}随机截距 ", text)
    translation_file.write_text(text, encoding="utf-8")
    return translation_file


def test_blocks_cut_prose_code_and_captions(project):
    root, _ = project
    blocks = translation.blocks(PAGE)
    kinds = [b.kind for b in blocks]
    assert kinds[0] == "front" and kinds.count("code") == 1
    caption = next(b for b in blocks if b.kind == "caption")
    assert (caption.text, caption.name) == ("A random intercept per group.", "fig-x")
    code = next(b for b in blocks if b.kind == "code")
    assert "x = 1\n\ny = 2" in code.text  # a blank line inside a cell stays in the cell
    note = next(b for b in blocks if b.text.startswith("```{note}"))
    assert "The second one." in note.text  # a fenced directive is one block
    prose = [b for b in blocks if b.translatable]
    assert [b.kind for b in prose] == ["text", "text", "caption", "text", "text"]
    # math and gated-directive fences have no prose: copied as they are
    assert not any(b.text.startswith(("$$", "````{exercise-start}")) for b in prose)


def test_hash_ignores_rewrapping_only():
    assert translation.text_hash("a b\nc") == translation.text_hash("a  b c ")
    assert translation.text_hash("a b c") != translation.text_hash("a b d")


def test_untranslated_page_is_reported_with_what_to_run(project):
    root, locales = project
    problems = translation.check_page("book/page.md", "zh", root, locales)
    assert len(problems) == 1 and "tools/translate.py update zh book/page.md" in problems[0]


def test_complete_translation_passes_and_assembles(project):
    root, locales = project
    _translate_all(root, locales)
    assert translation.check_page("book/page.md", "zh", root, locales) == []
    assert translation.glossary_problems("book/page.md", "zh", root, locales) == []
    page = translation.translated_page("book/page.md", "zh", root, locales)
    english = [b.text for b in translation.blocks(PAGE) if b.kind in ("code", "front")]
    chinese = [b.text for b in translation.blocks(page) if b.kind in ("code", "front")]
    assert chinese == english
    assert "```{translated-caption} fig-x\n中文随机截距 A random intercept" in page
    assert "$$\na = b\n$$" in page and "1. 中文随机截距 Fit" in page


def test_changed_english_paragraph_is_named(project):
    root, locales = project
    _translate_all(root, locales)
    changed = PAGE.replace("2. Compare.", "2. Compare the two fits.")
    (root / "book" / "page.md").write_text(changed, encoding="utf-8")
    problems = translation.check_page("book/page.md", "zh", root, locales)
    assert any("paragraph 4 changed or is new" in p and "Compare the two fits" in p
               for p in problems)
    assert any("no longer matches any English one" in p for p in problems)
    with pytest.raises(ValueError, match="out of date"):
        translation.translated_page("book/page.md", "zh", root, locales)


def test_update_marks_the_changed_paragraph_todo_with_a_hint(project):
    root, locales = project
    path = _translate_all(root, locales)
    (root / "book" / "page.md").write_text(PAGE.replace("2. Compare.", "2. Compare all."),
                                           encoding="utf-8")
    path.write_text(translation.updated_translation("book/page.md", "zh", root, locales),
                    encoding="utf-8")
    updated = translation.read_translation(path)
    assert len(updated.todo) == 1
    text = path.read_text(encoding="utf-8")
    assert "2. Compare all." in text and "earlier translation here" in text
    assert any("not translated yet" in p
               for p in translation.check_page("book/page.md", "zh", root, locales))


def test_lost_reference_and_english_left_over_are_reported(project):
    root, locales = project
    path = _translate_all(root, locales)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("{numref}`fig-x`", "图").replace(
        "```{note}\n中文随机截距 A note", "```{note}\nA note").replace(
        "中文随机截距 The second", "The second"), encoding="utf-8")
    problems = translation.check_page("book/page.md", "zh", root, locales)
    assert any("{numref}fig-x" in p and "does not keep" in p for p in problems)
    assert any("still in English" in p for p in problems)


def test_glossary_term_missing_is_reported(project):
    root, locales = project
    path = _translate_all(root, locales)
    path.write_text(path.read_text(encoding="utf-8").replace(". 中文随机截距", ". 中文"),
                    encoding="utf-8")
    problems = translation.glossary_problems("book/page.md", "zh", root, locales)
    assert any("random intercept" in p and "随机截距" in p for p in problems)


def test_emphasis_closed_after_punctuation_is_reported(project):
    root, locales = project
    path = _translate_all(root, locales)
    path.write_text(path.read_text(encoding="utf-8").replace(
        "中文随机截距 Some prose", "**中文。**随机截距 Some prose"), encoding="utf-8")
    problems = translation.check_page("book/page.md", "zh", root, locales)
    assert any("emphasis" in p for p in problems)


def test_editions_share_the_execution_cache(project, tmp_path):
    """The assembled page's notebook hashes as the English one: jupyter-cache serves it."""
    jupytext = pytest.importorskip("jupytext")
    root, locales = project
    _translate_all(root, locales)
    english = jupytext.reads(PAGE, fmt="md:myst")
    chinese = jupytext.reads(translation.translated_page("book/page.md", "zh", root, locales),
                             fmt="md:myst")
    cache = get_cache(str(tmp_path / "cache"))
    assert cache.create_hashed_notebook(nbformat.from_dict(chinese))[1] == \
        cache.create_hashed_notebook(nbformat.from_dict(english))[1]


def test_the_books_translations_are_up_to_date():
    """The build's check over the book itself: every page translated, nothing drifted."""
    sys.path.insert(0, str(ROOT / "tools"))
    import translate

    assert translate.problems("zh", translate.toc_pages()) == []
