"""The book's editions (English, Chinese) and what makes every page usable by everyone.

- A switch in each page's header leads to the same page in the other edition
  (``_build/html/<language>/<page>.html``); the pages say their language (``html lang``)
  and name their counterpart (``<link rel="alternate" hreflang>``).
- ``translated-caption``: an edition's caption for a figure whose code cell (and so its
  English caption in the cell's metadata) is shared with the English edition.
- What axe-core finds in the theme's pages is mended in ``static/``: the sidebar's section
  toggles get a name, the bibliography's list a valid role (``editions.js``), links on
  tinted admonitions enough contrast (``editions.css``).
- Every image gets alt text: a figure's caption, or a build error naming the page when an
  image has neither caption nor alt text.
- Figures are SVG with their text as text (``svg.fonttype: none``, see
  ``tools/ipython_kernel_config.py``); in an edition with ``figure_labels`` each label is
  looked up there, and a label with words and no translation fails the build.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
SWITCH_NAME = {"en": "Language", "zh": "语言"}  # what a screen reader calls the switch
_SVG_TEXT = re.compile(r"(<text\b[^>]*>)([^<]*)(</text>)")
_WORDS = re.compile(r"[A-Za-z]{2,}")
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")  # Chinese or its punctuation


class translated_caption(nodes.Element):  # noqa: N801 - docutils names nodes in lower case
    """A translated caption waiting for its figure."""


class TranslatedCaption(SphinxDirective):
    """``{translated-caption} <figure name>``: its content replaces that figure's caption."""

    required_arguments = 1
    has_content = True

    def run(self):
        node = translated_caption(figure=self.arguments[0])
        self.set_source_info(node)
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


class PlaceTranslatedCaptions(SphinxTransform):
    """Put each translated caption into its figure, in place of the English one."""

    default_priority = 400

    def apply(self):
        for node in list(self.document.findall(translated_caption)):
            name = node["figure"]
            figure = next((f for f in self.document.findall(nodes.figure)
                           if name in f["names"] or name in f["ids"]), None)
            caption = figure.next_node(nodes.caption) if figure is not None else None
            if caption is None:
                logger.warning(f"translated-caption: no figure named {name!r} on this page",
                               location=node)
            else:
                paragraph = node.next_node(nodes.paragraph)
                caption.children = []
                caption.extend(paragraph.children if paragraph is not None else node.children)
            node.parent.remove(node)


class AltTextFromCaptions(SphinxTransform):
    """Give each image alt text from its figure's caption; warn (fail) without either."""

    default_priority = 410

    def apply(self):
        for image in self.document.findall(nodes.image):
            if image.get("alt"):
                continue
            figure = image.parent
            while figure is not None and not isinstance(figure, nodes.figure):
                figure = figure.parent
            caption = figure.next_node(nodes.caption) if figure is not None else None
            if caption is not None and caption.astext().strip():
                image["alt"] = " ".join(caption.astext().split())
            else:
                logger.warning("an image without alt text or caption: give its code cell a "
                               "`mystnb: figure: caption:` (or the image an `:alt:`)",
                               location=image)


def edition_link(pagename: str, language: str) -> str:
    """The relative address of ``pagename`` in ``language``'s edition, from this page
    (editions sit side by side: ``html/en/book/lmm.html``, ``html/zh/book/lmm.html``)."""
    return "../" * (pagename.count("/") + 1) + f"{language}/{pagename}.html"


def _switch(app, pagename, templatename, context, doctree):
    """The language switch and the alternate links of the page."""
    here = app.config.edition_language
    others = {code: label for code, label in app.config.edition_languages.items()
              if code != here}
    context["edition_switch_name"] = SWITCH_NAME.get(here, SWITCH_NAME["en"])
    context["edition_switch"] = [
        {"language": code, "label": label, "href": edition_link(pagename, code)}
        for code, label in others.items()]
    context["metatags"] = context.get("metatags", "") + "".join(
        f'\n<link rel="alternate" hreflang="{code}" href="{edition_link(pagename, code)}">'
        for code in others)


def load_labels(path: Path) -> tuple[dict[str, str], list[tuple[re.Pattern, str]]]:
    """An edition's figure labels: exact strings, and patterns with groups."""
    table = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    exact = {str(k): str(v) for k, v in (table.get("labels") or {}).items()}
    exact.update({str(k): str(k) for k in table.get("keep") or []})
    patterns = [(re.compile(rf"^{entry['en']}$"), entry["zh"])
                for entry in table.get("patterns") or []]
    return exact, patterns


def translate_svg(text: str, exact: dict[str, str],
                  patterns: list[tuple[re.Pattern, str]]) -> tuple[str, set[str]]:
    """The SVG with each text label translated, and the labels with words left as they
    were because no translation is known."""
    missing: set[str] = set()

    def one(match: re.Match) -> str:
        label = html.unescape(match.group(2))
        if not _WORDS.search(label) or _CJK.search(label):  # no words, or translated
            return match.group(0)
        if label in exact:
            new = exact[label]
        else:
            found = next((p.sub(rep, label) for p, rep in patterns if p.match(label)), None)
            if found is None:
                missing.add(label)
                return match.group(0)
            new = found
        return match.group(1) + html.escape(new, quote=False) + match.group(3)

    return _SVG_TEXT.sub(one, text), missing


class TranslateFigureLabels(SphinxTransform):
    """In an edition with figure labels, swap each SVG figure for a translated copy
    (written beside the original as ``<name>.<language>.svg``)."""

    default_priority = 420

    def apply(self):
        config = self.config
        if not config.figure_labels:
            return
        exact, patterns = load_labels(Path(config.figure_labels))
        suffix = f".{config.edition_language}.svg"
        for image in self.document.findall(nodes.image):
            uri = image.get("uri", "")
            if not uri.endswith(".svg") or uri.endswith(suffix):
                continue
            # myst-nb's outputs are "/../_build/jupyter_execute/<hash>.svg": from the source
            # folder, as Sphinx reads an image path that starts with "/"
            source = Path(self.env.srcdir) / uri.lstrip("/")
            translated, missing = translate_svg(source.read_text(encoding="utf-8"), exact,
                                                patterns)
            if missing:
                logger.warning(f"figure labels with no translation in "
                               f"{config.figure_labels}: {sorted(missing)}", location=image)
            source.with_suffix(suffix).write_text(translated, encoding="utf-8")
            image["uri"] = uri[:-4] + suffix
            image["candidates"] = {"*": image["uri"]}


def _templates(app, config):
    config.templates_path.append(str(TEMPLATES))
    config.html_static_path.append(str(STATIC))


def setup(app):
    app.add_config_value("edition_language", "en", "html")
    app.add_config_value("edition_languages", {"en": "English"}, "html")
    app.add_config_value("figure_labels", "", "env")
    app.add_node(translated_caption)
    app.add_directive("translated-caption", TranslatedCaption)
    app.add_transform(PlaceTranslatedCaptions)
    app.add_transform(AltTextFromCaptions)
    app.add_transform(TranslateFigureLabels)
    app.connect("config-inited", _templates)
    app.add_js_file("editions.js")
    app.add_css_file("editions.css")
    app.connect("html-page-context", _switch)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
