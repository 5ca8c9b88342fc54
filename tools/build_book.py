"""Build the book, re-executing the pages that use ``companion`` whenever the package changed.

jupyter-cache keys a page on its code cells only, so an edit in ``src/companion`` (or a new
pinned dependency set) would otherwise leave stale outputs in the book. We fingerprint the
package sources and ``constraints.txt``; when the fingerprint differs from the last
successful build, the cached runs of every page that imports ``companion`` are dropped and
those pages are marked for re-reading. Then ``jupyter-book build`` runs with warnings as
errors, and the build's times and memory go to ``_build/build-report.md``.

Usage (``make book``, ``make student`` and ``make page`` call it with the project's .venv):
    python tools/build_book.py                    # the book, into _build/html
    python tools/build_book.py --student          # without solutions, into _build/student
    python tools/build_book.py --rerun book/x.md  # force one page to execute again
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import build_report  # noqa: E402  (a sibling script, not a package)

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
FINGERPRINT = BUILD / ".companion-fingerprint"
ENVIRONMENT_SECONDS = BUILD / ".environment-seconds"  # written by the Makefile
STUDENT = BUILD / "student"
USES_COMPANION = re.compile(r"^\s*(import companion|from companion)\b", re.MULTILINE)


def fingerprint(root: Path = ROOT) -> str:
    """SHA-256 over the package's source and data files and the pinned dependency set."""
    digest = hashlib.sha256()
    paths = sorted(p for p in (root / "src" / "companion").rglob("*") if p.is_file()
                   and "__pycache__" not in p.parts)
    for path in [*paths, root / "constraints.txt"]:
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


def student_config() -> Path:
    """A copy of _config.yml that leaves out every solution (sphinx-exercise's switch)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = config["sphinx"]
    sphinx["config"]["hide_solutions"] = True
    sphinx["local_extensions"] = {name: str(ROOT / path)
                                  for name, path in sphinx["local_extensions"].items()}
    config["bibtex_bibfiles"] = [str(ROOT / path) for path in config["bibtex_bibfiles"]]
    config["title"] += " (student edition)"
    target = STUDENT / "_config.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


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

    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT),
               "--builder", "html", "--warningiserror", "--keep-going"]
    if args.student:
        command += ["--config", str(student_config()), "--path-output", str(STUDENT)]
    code, seconds, pages = build_report.follow(command, ROOT)
    if code != 0:
        print(f"book build FAILED after {seconds:.1f} s", file=sys.stderr)
        return code

    FINGERPRINT.write_text(current)
    build = {"kind": "student" if args.student else ("cold" if cold else "incremental"),
             "seconds": round(seconds, 1), "pages_executed": len(pages)}
    if ENVIRONMENT_SECONDS.exists():
        build["environment_seconds"] = float(ENVIRONMENT_SECONDS.read_text())
        ENVIRONMENT_SECONDS.unlink()
    build_report.write_report(BUILD / "build-report.json", build, pages)
    output = STUDENT / "_build" / "html" if args.student else BUILD / "html"
    print(f"book built in {seconds:.1f} s ({len(pages)} page(s) executed): "
          f"{output / 'index.html'}; report: {BUILD / 'build-report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
