"""The two editions of the built book (``make book``), read without a browser: the same
pages in both, each saying its language and switching to its counterpart, the same code
cells (one execution serves both), Chinese prose, captions and figure labels in the Chinese
edition, alt text on every image, and a page to choose an edition."""

import json
import re
import sys
from urllib.parse import urlparse

import pytest
from bs4 import BeautifulSoup

from book_pages import EDITIONS, HTML, ROOT, notebook_pages, require_built, toc_pages

require_built(*EDITIONS.values())
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import editions  # noqa: E402  (the book's Sphinx extension)

CJK = re.compile(r"[\u3400-\u9fff]")
ASCII_QUOTES = str.maketrans("‘’“”", "''\"\"")
HTML_LANG = {"en": "en", "zh": "zh-CN"}


def _soup(language, page):
    path = EDITIONS[language] / f"{page}.html"
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


@pytest.mark.parametrize("language", EDITIONS)
@pytest.mark.parametrize("page", [*toc_pages(), "search", "genindex"])
def test_page_says_its_language_and_switches_to_the_same_page(language, page):
    soup = _soup(language, page)
    assert soup.html["lang"] == HTML_LANG[language]
    links = soup.select("nav.edition-switch a")
    assert [a["hreflang"] for a in links] == [code for code in EDITIONS if code != language]
    for link in links:
        target = (EDITIONS[language] / page).parent / link["href"]
        assert target.resolve() == (EDITIONS[link["hreflang"]] / f"{page}.html").resolve()
        assert target.exists()
        alternate = soup.find("link", rel="alternate", hreflang=link["hreflang"])
        assert alternate is not None and alternate["href"] == link["href"]


@pytest.mark.parametrize("page", notebook_pages())
def test_code_cells_are_the_same_in_both_editions(page):
    cells = {language: [cell.get_text() for cell in _soup(language, page).select(
        "div.cell_input")] for language in EDITIONS}
    assert cells["zh"] == cells["en"]


@pytest.mark.parametrize("page", toc_pages())
def test_chinese_edition_reads_in_chinese(page):
    article = _soup("zh", page).find("article")
    for tag in article.select("pre, code, .cell_output, .math, table, .citation"):
        tag.decompose()
    text = article.get_text(" ")
    assert len(CJK.findall(text)) > 0.25 * len(re.findall(r"[A-Za-z]+", text)), page
    # markup that did not render (emphasis closed after Chinese punctuation, a role)
    assert re.findall(r".{0,20}(?:\*\*|\{glue|\{numref\}|\{doc\}|\$\$).{0,20}", text) == []
    # the English edition names the other one ("中文") and little else in Chinese
    assert len(CJK.findall(_soup("en", page).find("article").get_text(" "))) < 10


@pytest.mark.parametrize("language", EDITIONS)
@pytest.mark.parametrize("page", notebook_pages())
def test_every_image_has_alt_text_from_its_caption(language, page):
    soup = _soup(language, page)
    for img in soup.find("article").find_all("img"):
        alt = img.get("alt", "").strip().translate(ASCII_QUOTES)
        assert alt and not alt.endswith((".png", ".svg")) and "/" not in alt.split()[0]
        figure = img.find_parent("figure")
        if figure is not None:
            caption = " ".join(figure.find("figcaption").get_text(" ").split()).translate(
                ASCII_QUOTES)
            assert " ".join(alt.split())[:20] in caption or CJK.search(alt)
        if language == "zh":
            assert CJK.search(alt), f"{page}: alt text not in Chinese: {alt[:60]}"


@pytest.mark.parametrize("page", notebook_pages())
def test_chinese_figures_have_translated_labels(page):
    exact, patterns = editions.load_labels(ROOT / "locales" / "zh" / "figure-labels.yml")
    english = _soup("en", page).select("article figure img")
    chinese = _soup("zh", page).select("article figure img")
    assert len(chinese) == len(english)
    for img in chinese:
        if not img["src"].endswith(".svg"):
            continue
        assert img["src"].endswith(".zh.svg")
        svg = (EDITIONS["zh"] / page).parent.joinpath(img["src"]).read_text(encoding="utf-8")
        assert editions.translate_svg(svg, exact, patterns)[1] == set()
    captions = [f.get_text(" ") for f in _soup("zh", page).select("article figcaption")]
    assert all(CJK.search(caption) for caption in captions), captions


def test_chooser_links_to_each_edition():
    soup = BeautifulSoup((HTML / "index.html").read_text(encoding="utf-8"), "html.parser")
    targets = {a["hreflang"]: a["href"] for a in soup.select("a[hreflang]")}
    assert set(targets) == set(EDITIONS)
    for language, href in targets.items():
        assert (HTML / urlparse(href).path).resolve() == EDITIONS[language] / "index.html"


def test_chinese_search_index_holds_chinese_words():
    """Sphinx splits Chinese into words with jieba (the book extra installs it); without
    it the Chinese edition's search would find no Chinese word."""
    text = (EDITIONS["zh"] / "searchindex.js").read_text(encoding="utf-8")
    terms = json.loads(text[text.index("(") + 1:text.rindex(")")])["terms"]
    assert {"截距", "随机", "混合"} <= set(terms)
