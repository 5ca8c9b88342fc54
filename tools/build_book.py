"""Build the book, re-executing the pages that use ``companion`` whenever the package changed.

jupyter-cache keys a page on its code cells only, so an edit in ``src/companion`` (or a new
pinned dependency set) would otherwise leave stale outputs in the book. We fingerprint the
package sources and ``constraints.txt``; when the fingerprint differs from the last
successful build, the cached runs of every page that imports ``companion`` are dropped and
those pages are marked for re-reading. Then ``jupyter-book build`` runs with warnings as
errors, once per edition, and the build's times and memory go to ``_build/build-report.md``.

Editions: English (the pages in ``book/``) and each language of ``locales/``, whose pages
are written into ``_build/<language>/src`` from the English pages and their translations
(:mod:`companion.classroom.translation`). A translation that drifted from its English stops
the build before anything runs, naming the pages and paragraphs. The code cells are the
same characters in every edition, so the other editions execute nothing: they are served
from the same execution cache. Each edition lands in ``_build/html/<language>``, beside a
small page that lets a reader choose.

Usage (``make book``, ``make student`` and ``make page`` call it with the project's .venv):
    python tools/build_book.py                    # both editions, into _build/html/<lang>
    python tools/build_book.py --student          # without solutions: _build/student/html
    python tools/build_book.py --rerun book/x.md  # force one page to execute again
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_report  # noqa: E402  (a sibling script, not a package)
import translate  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from companion.classroom import translation  # noqa: E402  (the build runs from a clone)

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
FINGERPRINT = BUILD / ".companion-fingerprint"
ENVIRONMENT_SECONDS = BUILD / ".environment-seconds"  # written by the Makefile
STUDENT = BUILD / "student"
KERNEL_CONFIG = ROOT / "tools" / "ipython_kernel_config.py"
EDITIONS = {"en": "English", **translation.LANGUAGES}
TITLES = {"en": "Mixed Models Companion", "zh": "混合效应模型 Python 伴读"}
SPHINX_LANGUAGE = {"en": "en", "zh": "zh_CN"}
# what the extensions write in a page that Sphinx's own translations do not cover
SETTINGS = {"en": {}, "zh": {"togglebutton_hint": "点击显示", "togglebutton_hint_hide": "点击隐藏"}}
USES_COMPANION = re.compile(r"^\s*(import companion|from companion)\b", re.MULTILINE)


def fingerprint(root: Path = ROOT) -> str:
    """SHA-256 over the package's source and data files and the pinned dependency set."""
    digest = hashlib.sha256()
    paths = sorted(p for p in (root / "src" / "companion").rglob("*") if p.is_file()
                   and "__pycache__" not in p.parts)
    for path in [*paths, root / "constraints.txt", root / "tools" / KERNEL_CONFIG.name]:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes() if path.exists() else b"")
    return digest.hexdigest()


def pages_using_companion(root: Path = ROOT) -> list[Path]:
    """The book's notebook pages whose code imports the package."""
    return sorted(p for p in (root / "book").rglob("*.md")
                  if "_build" not in p.parts and USES_COMPANION.search(p.read_text("utf-8")))


def invalidate(pages: list[Path], cache_dir: Path = CACHE) -> int:
    """Drop the cached executions of ``pages`` and touch them so Sphinx re-reads them."""
    dropped = 0
    if cache_dir.exists():
        from jupyter_cache import get_cache

        cache = get_cache(str(cache_dir))
        wanted = {str(p.resolve()) for p in pages}
        for record in cache.list_cache_records():
            if str(Path(record.uri).resolve()) in wanted:
                cache.remove_cache(record.pk)
                dropped += 1
    now = time.time()
    for page in pages:
        os.utime(page, (now, now))
    return dropped


def edition_pages(language: str) -> Path:
    """The folder the edition is built from: the repository for English; for another
    language, ``_build/<language>/src``, written from the English pages and their
    translations (a file is rewritten only when its text changed, so Sphinx re-reads only
    what changed). Raises ``ValueError`` naming every paragraph that drifted."""
    if language == "en":
        return ROOT
    problems = translate.problems(language, translate.toc_pages())
    if problems:
        raise ValueError(f"the {EDITIONS[language]} edition is out of date with the English "
                         "pages (run `python tools/translate.py update "
                         f"{language} <page>` and translate what it marks todo):\n  "
                         + "\n  ".join(problems))
    source = BUILD / language / "src"
    for page in translate.toc_pages():
        _write_if_changed(source / page, translation.translated_page(page, language))
    for name in ["_toc.yml", "book/references.bib"]:
        _write_if_changed(source / name, (ROOT / name).read_text(encoding="utf-8"))
    return source


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def edition_config(language: str, student: bool) -> Path:
    """``_config.yml`` for one edition, with paths made absolute (the other editions are
    built from another folder) and, for the student edition, every solution left out
    (sphinx-exercise's switch)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = config["sphinx"]
    sphinx["local_extensions"] = {name: str(ROOT / path)
                                  for name, path in sphinx["local_extensions"].items()}
    config["bibtex_bibfiles"] = [str(ROOT / path) for path in config["bibtex_bibfiles"]]
    config["execute"]["cache"] = str(ROOT / config["execute"]["cache"])
    config["title"] = TITLES[language]
    settings = sphinx["config"]
    settings["language"] = SPHINX_LANGUAGE[language]
    settings["edition_language"] = language
    settings["edition_languages"] = EDITIONS
    settings.update(SETTINGS[language])
    labels = ROOT / "locales" / language / "figure-labels.yml"
    settings["figure_labels"] = str(labels) if language != "en" else ""
    if student:
        settings["hide_solutions"] = True
        config["title"] += " (student edition)" if language == "en" else "（学生版）"
    folder = (STUDENT if student else BUILD) / language
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "_config.yml"
    target.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return target


def publish(built: Path, site: Path, language: str) -> Path:
    """Copy one edition's HTML to ``site/<language>``."""
    target = site / language
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(built, target)
    return target


def write_chooser(site: Path) -> Path:
    """``site/index.html``: the editions, each in its own language."""
    links = "\n".join(
        f'    <li><a href="{code}/index.html" hreflang="{code}" lang="{code}">'
        f'{TITLES[code]} ({label})</a></li>' for code, label in EDITIONS.items())
    page = site / "index.html"
    page.write_text(f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Mixed Models Companion</title>
</head>
<body>
  <main>
  <h1>Mixed Models Companion</h1>
  <p>Choose an edition / 选择版本:</p>
  <ul>
{links}
  </ul>
  </main>
</body>
</html>
""", encoding="utf-8")
    return page


def kernel_profile() -> Path:
    """An IPython directory whose kernel configuration is the book's (SVG figures)."""
    profile = BUILD / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    shutil.copy(KERNEL_CONFIG, profile / "ipython_kernel_config.py")
    return profile.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the Mixed Models Companion book.")
    parser.add_argument("--student", action="store_true",
                        help="build the student edition, without solutions")
    parser.add_argument("--rerun", nargs="+", type=Path, default=[], metavar="PAGE",
                        help="execute these pages again even if their code did not change")
    args = parser.parse_args(argv)

    BUILD.mkdir(exist_ok=True)
    cold = not CACHE.exists()
    current = fingerprint()
    previous = FINGERPRINT.read_text().strip() if FINGERPRINT.exists() else None
    if previous != current and not cold:
        pages = pages_using_companion()
        dropped = invalidate(pages)
        print(f"companion changed: re-executing {len(pages)} page(s) "
              f"({dropped} cached run(s) dropped)", flush=True)
    if args.rerun:
        invalidate([page.resolve() for page in args.rerun])

    environment = {**os.environ, "IPYTHONDIR": str(kernel_profile())}  # for the kernels
    try:
        sources = {language: edition_pages(language) for language in EDITIONS}
    except ValueError as error:
        print(error, file=sys.stderr)
        return 1
    if previous != current and not cold or args.rerun:
        _touch_translations(sources)

    site = (STUDENT if args.student else BUILD) / "html"
    total, executed, editions = 0.0, {}, {}
    for language, source in sources.items():
        command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(source),
                   "--builder", "html", "--warningiserror", "--keep-going",
                   "--config", str(edition_config(language, args.student)),
                   "--path-output", str((STUDENT if args.student else BUILD) / language)]
        code, seconds, pages = build_report.follow(command, ROOT, environment)
        total += seconds
        if code != 0:
            print(f"book build FAILED ({EDITIONS[language]} edition) after {total:.1f} s",
                  file=sys.stderr)
            return code
        editions[language] = round(seconds, 1)
        executed |= pages
        if language == "en":  # the cache now holds runs of the current package
            FINGERPRINT.write_text(current)
        publish((STUDENT if args.student else BUILD) / language / "_build" / "html", site,
                language)
    write_chooser(site)

    build = {"kind": "student" if args.student else ("cold" if cold else "incremental"),
             "seconds": round(total, 1), "pages_executed": len(executed),
             "editions": editions}
    if ENVIRONMENT_SECONDS.exists():
        build["environment_seconds"] = float(ENVIRONMENT_SECONDS.read_text())
        ENVIRONMENT_SECONDS.unlink()
    build_report.write_report(BUILD / "build-report.json", build, executed)
    print(f"book built in {total:.1f} s ({len(executed)} page(s) executed; editions: "
          + ", ".join(f"{EDITIONS[k]} {v:.1f} s" for k, v in editions.items())
          + f"): {site / 'index.html'}; report: {BUILD / 'build-report.md'}")
    return 0


def _touch_translations(sources: dict[str, Path]) -> None:
    """Make Sphinx re-read every page of the other editions (their outputs changed)."""
    now = time.time()
    for language, source in sources.items():
        if language != "en":
            for page in translate.toc_pages():
                os.utime(source / page, (now, now))


if __name__ == "__main__":
    sys.exit(main())
