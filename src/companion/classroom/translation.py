"""The book's other editions: a page's prose in another language, its code untouched.

An English page (MyST Markdown) is read as a sequence of blocks: the front matter, code
cells, figure captions (from a code cell's ``mystnb.figure.caption``) and text segments
(runs of lines between blank lines, a fenced directive kept whole). A translation file,
``locales/<language>/<page>.md``, holds one translated segment per English segment that
has prose, each under a marker with the hash of the English it translates::

    <!-- translation of book/lmm.md; English prose 3f2a9c1b0d4e -->

    <!-- 8e1d0c3b2a19 -->
    本章对应第 8.1 节……

    <!-- caption fig-lmm-lines 0a1b2c3d4e5f -->
    每位受试者一条折线……

The edition's page is the English page with each segment replaced by its translation:
the code cells are the same characters, so the execution cache serves both editions. A
caption's translation follows its code cell as a ``translated-caption`` directive (the
cell's metadata is part of the cache key and stays English). :func:`check_page` reports
what drifted: English paragraphs that changed or are new, translations of paragraphs that
are gone, segments still untranslated, and translations that lost a reference, a label, a
glued value or a directive of their English.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
LOCALES = ROOT / "locales"
LANGUAGES = {"zh": "中文"}
_MARKER = re.compile(r"^<!-- (?:(todo|same) )?(?:caption (\S+) )?([0-9a-f]{12}) -->\s*$")
_HEADER = re.compile(r"^<!-- translation of (\S+); English prose ([0-9a-f]{12}) -->\s*$")
_FENCE_OPEN = re.compile(r"^(`{3,}|:{3,})(\{[^}]*\}|\w*)")
_CJK = re.compile(r"[\u3400-\u9fff]")
# CommonMark does not close ** (or *) after punctuation when a letter follows at once:
# "**问题。**它" stays literal; the punctuation goes outside ("**问题**。它")
_UNCLOSED_EMPHASIS = re.compile(r"[\u3000-\u303f\uff01-\uff1f\uff08\uff09]\*{1,2}[\u3400-\u9fff]")
# what a translation must keep of its English: the targets of roles (a glued value, a
# cross-reference), directive names, labels and names, targets, substitutions, link URLs
_ROLE = re.compile(r"\{([\w:-]+)\}`([^`]*)`")
_KEPT = [re.compile(pattern, re.M) for pattern in (
    r"^\s*(?:`{3,}|:{3,})(\{[^}]+\})",      # directive names
    r"^\s*:((?:label|name|class):.*)$",     # directive options that name things
    r"^(\(\S+\)=)\s*$",                     # (target)=
    r"(\{\{[^}]+\}\})",                      # {{ substitution }}
    r"\]\(([^)\s]+)\)",                      # a link's address
)]
# text that is not prose: math, literals, roles, fences, options, targets, HTML comments
_NOT_PROSE = [re.compile(pattern, flags) for pattern, flags in (
    (r"^(>\s*)?(`{3,})[\w-]*\s*$.*?^(>\s*)?\2\s*$", re.M | re.S),  # fenced code
    (r"^\s*(?:`{3,}|:{3,}).*$", re.M), (r"^\s*:[\w-]+:.*$", re.M),  # fences, options
    (r"\$\$.*?\$\$", re.S), (r"\$[^$\n]+\$", 0), (r"`[^`\n]*`", 0),
    (r"\{[\w:-]+\}", 0), (r"^\(\S+\)=\s*$", re.M), (r"<!--.*?-->", re.S),
    (r"\\begin\{.*?\\end\{[^}]*\}", re.S),
)]


@dataclass(frozen=True)
class Block:
    """A piece of a page: ``kind`` is "front", "code", "text" or "caption" (a figure's
    caption, with the figure's ``name``); ``text`` its exact characters."""

    kind: str
    text: str
    name: str | None = None

    @property
    def key(self) -> str:
        """The hash of the English a translation is recorded against (12 hex digits)."""
        return text_hash(self.text)

    @property
    def translatable(self) -> bool:
        """Whether the block holds prose (a code cell and the front matter never do)."""
        if self.kind == "caption":
            return True
        if self.kind != "text":
            return False
        rest = self.text
        for pattern in _NOT_PROSE:
            rest = pattern.sub(" ", rest)
        return re.search(r"[A-Za-z]{2,}", rest) is not None


def text_hash(text: str) -> str:
    """SHA-256 of the text with its white space collapsed: re-wrapping is not a change."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:12]


def _code_cell_caption(lines: list[str]) -> tuple[str, str] | None:
    """(caption, name) of a code cell's ``:mystnb: figure:`` options, if it has them."""
    options = []
    for line in lines[1:]:
        if not line.startswith(":"):
            break
        options.append(line[1:])
    if not options:
        return None
    try:
        meta = yaml.safe_load("\n".join(options)) or {}
    except yaml.YAMLError:
        return None
    figure = (meta.get("mystnb") or {}).get("figure") if isinstance(meta, dict) else None
    if not isinstance(figure, dict) or not figure.get("caption"):
        return None
    if not figure.get("name"):
        raise ValueError(f"a figure caption without a name: {figure['caption'][:60]!r}; "
                         "give the figure a `name:` so its translation can find it")
    return " ".join(str(figure["caption"]).split()), str(figure["name"])


def _fence_end(lines: list[str], start: int) -> int:
    """The index of the line closing the fence opened at ``start`` (nested fences too)."""
    stack = [_FENCE_OPEN.match(lines[start]).group(1)]
    for i in range(start + 1, len(lines)):
        line = lines[i].strip()
        bare = re.fullmatch(r"(`{3,}|:{3,})", line)
        if bare and bare.group(1)[0] == stack[-1][0] and len(bare.group(1)) >= len(stack[-1]):
            stack.pop()
            if not stack:
                return i
            continue
        opened = _FENCE_OPEN.match(line)
        if opened and opened.group(2):
            stack.append(opened.group(1))
    raise ValueError(f"a fence opened on line {start + 1} is never closed")


def blocks(text: str) -> list[Block]:
    """Cut a MyST page into :class:`Block` s; joined with blank lines they give the page
    back up to blank-line runs."""
    lines = text.split("\n")
    out: list[Block] = []
    i = 0
    if lines and lines[0].strip() == "---":
        end = lines.index("---", 1)
        out.append(Block("front", "\n".join(lines[:end + 1])))
        i = end + 1
    paragraph: list[str] = []

    def flush():
        if paragraph:
            out.append(Block("text", "\n".join(paragraph)))
            paragraph.clear()

    while i < len(lines):
        line = lines[i]
        if not line.strip():
            flush()
            i += 1
            continue
        opened = _FENCE_OPEN.match(line)
        if opened:
            end = _fence_end(lines, i)
            chunk = lines[i:end + 1]
            if opened.group(2) == "{code-cell}":
                flush()
                out.append(Block("code", "\n".join(chunk)))
                caption = _code_cell_caption(chunk)
                if caption:
                    out.append(Block("caption", caption[0], caption[1]))
            else:
                paragraph.extend(chunk)
            i = end + 1
            continue
        paragraph.append(line)
        i += 1
    flush()
    return out


def prose_hash(page_blocks: list[Block]) -> str:
    """One hash over a page's translatable blocks, in order."""
    return text_hash(" ".join(b.key for b in page_blocks if b.translatable))


@dataclass
class Translation:
    """A translation file: the page it translates, the English prose hash it recorded and
    its segments by English hash (``todo`` ones still hold the English)."""

    source: str
    recorded: str
    segments: dict[str, str]
    todo: set[str]
    same: set[str]


def read_translation(path: Path) -> Translation:
    """Parse a translation file; a clear error for a malformed one."""
    lines = path.read_text(encoding="utf-8").split("\n")
    header = _HEADER.match(lines[0]) if lines else None
    if header is None:
        raise ValueError(f"{path}: the first line must be "
                         "'<!-- translation of <page>; English prose <hash> -->'")
    segments: dict[str, str] = {}
    todo, same = set(), set()
    key, body = None, []

    def close():
        if key is not None:
            segments[key] = "\n".join(body).strip("\n")

    for number, line in enumerate(lines[1:], start=2):
        marker = _MARKER.match(line)
        if marker:
            close()
            flag, key, body = marker.group(1), marker.group(3), []
            if flag == "todo":
                todo.add(key)
            elif flag == "same":
                same.add(key)
        elif key is None and line.strip():
            raise ValueError(f"{path}:{number}: text before the first segment marker")
        else:
            body.append(line)
    close()
    return Translation(header.group(1), header.group(2), segments, todo, same)


def translation_path(page: str, language: str, locales: Path = LOCALES) -> Path:
    """Where the translation of ``page`` (``book/lmm.md``) into ``language`` lives."""
    return locales / language / page


def _kept(text: str) -> list[str]:
    """What a translation must keep of ``text``: see ``_KEPT`` and ``_ROLE`` (a role is
    kept by its target, ``{doc}`the data <../data>``` as ``{doc}../data``)."""
    found = []
    for role, content in _ROLE.findall(text):
        target = re.search(r"<([^<>]+)>\s*$", content)
        found.append(f"{{{role}}}{(target.group(1) if target else content).strip()}")
    for pattern in _KEPT:
        found += [" ".join(m.split()) for m in pattern.findall(text)]
    return sorted(found)


def _preview(text: str, width: int = 70) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def check_page(page: str, language: str, root: Path = ROOT,
               locales: Path = LOCALES) -> list[str]:
    """What is wrong with the translation of ``page`` (relative to ``root``): an empty list
    when every paragraph of the English is translated and nothing was lost."""
    english = blocks((root / page).read_text(encoding="utf-8"))
    path = translation_path(page, language, locales)
    if not path.exists():
        return [f"{page} has no translation into {language} ({path.relative_to(locales.parent)}"
                f"): run `python tools/translate.py update {language} {page}`"]
    translation = read_translation(path)
    problems = []
    wanted = [b for b in english if b.translatable]
    keys = {b.key for b in wanted}
    for number, block in enumerate(wanted, start=1):
        what = (f"caption of {block.name}" if block.kind == "caption" else
                f"paragraph {number}")
        if block.key not in translation.segments:
            problems.append(f"{what} changed or is new: \"{_preview(block.text)}\"")
            continue
        done = translation.segments[block.key]
        if block.key in translation.todo:
            problems.append(f"{what} is not translated yet: \"{_preview(block.text)}\"")
        elif block.key not in translation.same and not _CJK.search(done):
            problems.append(f"{what} is still in English: \"{_preview(done)}\"")
        elif _UNCLOSED_EMPHASIS.search(done):
            problems.append(f"{what}: emphasis that ends after punctuation does not render; "
                            f"put the punctuation outside the ** : \"{_preview(done)}\"")
        elif _kept(done) != _kept(block.text) and block.kind == "text":
            lost = sorted(set(_kept(block.text)) - set(_kept(done)))
            extra = sorted(set(_kept(done)) - set(_kept(block.text)))
            problems.append(f"{what} does not keep the English's references and directives"
                            f" (missing {lost or 'none'}, added {extra or 'none'}): "
                            f"\"{_preview(block.text)}\"")
    for key, done in translation.segments.items():
        if key not in keys:
            problems.append(f"a translated paragraph no longer matches any English one "
                            f"(its English changed or was removed): \"{_preview(done)}\"")
    if not problems and translation.recorded != prose_hash(english):
        problems.append("the English paragraphs moved since the translation was revisited: "
                        f"run `python tools/translate.py update {language} {page}`")
    return [f"{page} ({language}): {problem}" for problem in problems]


def translated_page(page: str, language: str, root: Path = ROOT,
                    locales: Path = LOCALES) -> str:
    """The page in ``language``: English code cells and structure, translated prose.
    Raises ``ValueError`` listing the drift when the translation is not up to date."""
    problems = check_page(page, language, root, locales)
    if problems:
        raise ValueError("the translation is out of date:\n  " + "\n  ".join(problems))
    translation = read_translation(translation_path(page, language, locales))
    parts = []
    for block in blocks((root / page).read_text(encoding="utf-8")):
        if block.kind == "caption":
            parts.append(f"```{{translated-caption}} {block.name}\n"
                         f"{translation.segments[block.key]}\n```")
        elif block.translatable:
            parts.append(translation.segments[block.key])
        else:
            parts.append(block.text)
    return "\n\n".join(parts) + "\n"


def updated_translation(page: str, language: str, root: Path = ROOT,
                        locales: Path = LOCALES) -> str:
    """The translation file rewritten in the English page's current order: translated
    segments kept, new or changed English as ``todo`` segments (the English to translate,
    and the old translation at that place, if any, as a hint), the prose hash recorded."""
    english = blocks((root / page).read_text(encoding="utf-8"))
    path = translation_path(page, language, locales)
    old = read_translation(path) if path.exists() else Translation(page, "", {}, set(), set())
    keys = {b.key for b in english if b.translatable}
    stale = [text for key, text in old.segments.items() if key not in keys]
    lines = [f"<!-- translation of {page}; English prose {prose_hash(english)} -->", ""]
    for block in (b for b in english if b.translatable):
        label = f"caption {block.name} " if block.kind == "caption" else ""
        if block.key in old.segments and block.key not in old.todo:
            flag = "same " if block.key in old.same else ""
            lines += [f"<!-- {flag}{label}{block.key} -->", old.segments[block.key], ""]
        else:
            lines += [f"<!-- todo {label}{block.key} -->", block.text, ""]
            if stale:
                hint = stale.pop(0).replace("-->", "-- >")
                lines += [f"<!-- earlier translation here:\n{hint}\n-->", ""]
    return "\n".join(lines)


def glossary(language: str, locales: Path = LOCALES) -> dict[str, list[str]]:
    """The edition's glossary: each English term and the renderings the translation uses."""
    entries = yaml.safe_load((locales / language / "glossary.yml").read_text("utf-8"))
    return {entry["en"]: [entry["zh"]] if isinstance(entry["zh"], str) else entry["zh"]
            for entry in entries["terms"]}


def glossary_problems(page: str, language: str, root: Path = ROOT,
                      locales: Path = LOCALES) -> list[str]:
    """Translated paragraphs whose English uses a glossary term and whose translation
    uses none of the term's renderings."""
    terms = glossary(language, locales)
    path = translation_path(page, language, locales)
    if not path.exists():
        return []
    translation = read_translation(path)
    problems = []
    for block in blocks((root / page).read_text(encoding="utf-8")):
        done = translation.segments.get(block.key)
        if not block.translatable or done is None or \
                block.key in translation.todo | translation.same:
            continue
        english = " ".join(block.text.lower().split())
        for term, renderings in terms.items():
            if re.search(rf"\b{re.escape(term.lower())}", english) and \
                    not any(r in done for r in renderings):
                problems.append(f"{page} ({language}): \"{_preview(block.text, 50)}\" says "
                                f"\"{term}\"; the translation has none of {renderings}")
    return problems


def translated_opening(page: str, language: str, english: str, root: Path = ROOT,
                       locales: Path = LOCALES, length: int = 30) -> str:
    """The first words (``length`` characters of its first line) of the translation of the
    one paragraph of ``page`` that contains ``english``: where that paragraph starts in
    the edition (the autograded questions start at such places)."""
    found = [b for b in blocks((root / page).read_text(encoding="utf-8"))
             if b.translatable and english in b.text]
    if len(found) != 1:
        raise ValueError(f"{page}: {english!r} is in {len(found)} paragraphs, not one")
    done = read_translation(translation_path(page, language, locales)).segments[found[0].key]
    return done.strip().splitlines()[0][:length]
