"""The translations of the book's pages (``locales/<language>/``): update and check them.

    python tools/translate.py update zh book/lmm.md   # rewrite in the English's order, new
                                                      # or changed English marked "todo"
    python tools/translate.py update zh --all         # every page of _toc.yml
    python tools/translate.py check zh                # drift and glossary, every page
    python tools/translate.py check zh book/lmm.md    # one page

``update`` keeps every translated paragraph whose English is unchanged; a paragraph whose
English changed comes back as ``<!-- todo <hash> -->`` followed by the new English (and,
when there was one, the old translation at that place as a hint): translate it, then
remove the word ``todo``. A paragraph that reads the same in both languages (a list of
package names) is marked ``<!-- same <hash> -->``. ``check`` exits 1 naming each page and
paragraph that drifted; the book's build runs the same check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from companion.classroom import translation  # noqa: E402  (run from a clone)


def toc_pages(root: Path = ROOT) -> list[str]:
    """Every page of ``_toc.yml``, as paths with suffix (``book/data.md``)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]
    for entry in toc.get("chapters", []):
        pages.append(entry["file"])
        pages.extend(section["file"] for section in entry.get("sections", []))
    return [f"{page}.md" for page in pages]


def problems(language: str, pages: list[str]) -> list[str]:
    """Drift and glossary problems of ``pages``' translations."""
    found = []
    for page in pages:
        found += translation.check_page(page, language)
        found += translation.glossary_problems(page, language)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("update", "check"))
    parser.add_argument("language", choices=sorted(translation.LANGUAGES))
    parser.add_argument("pages", nargs="*", help="pages such as book/lmm.md (default: all)")
    parser.add_argument("--all", action="store_true", help="every page of _toc.yml")
    args = parser.parse_args(argv)
    pages = args.pages if args.pages and not args.all else toc_pages()
    if args.action == "update":
        for page in pages:
            path = translation.translation_path(page, args.language)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(translation.updated_translation(page, args.language),
                            encoding="utf-8")
            todo = len(translation.read_translation(path).todo)
            print(f"{path.relative_to(ROOT)}: {todo} paragraph(s) to translate")
        return 0
    found = problems(args.language, pages)
    for problem in found:
        print(problem)
    print(f"{len(found)} problem(s) in {len(pages)} page(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
