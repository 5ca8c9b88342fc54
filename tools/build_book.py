"""Build the book, re-executing the pages that use ``companion`` whenever the package changed.

jupyter-cache keys a page on its code cells only, so an edit in ``src/companion`` (or a new
pinned dependency set) would otherwise leave stale outputs in the book. We fingerprint the
package sources and ``constraints.txt``; when the fingerprint differs from the last
successful build, the cached runs of every page that imports ``companion`` are dropped and
those pages are marked for re-reading. Then ``jupyter-book build`` runs with warnings as
errors.

Usage: ``python tools/build_book.py`` (``make book`` calls it with the project's .venv).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
CACHE = BUILD / ".jupyter_cache"
FINGERPRINT = BUILD / ".companion-fingerprint"
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


def main() -> int:
    BUILD.mkdir(exist_ok=True)
    current = fingerprint()
    previous = FINGERPRINT.read_text().strip() if FINGERPRINT.exists() else None
    if previous != current and CACHE.exists():
        pages = pages_using_companion()
        dropped = invalidate(pages)
        print(f"companion changed: re-executing {len(pages)} page(s) "
              f"({dropped} cached run(s) dropped)", flush=True)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(ROOT), "--builder", "html",
               "--warningiserror", "--keep-going"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        print(f"book build FAILED after {elapsed:.1f} s", file=sys.stderr)
        return result.returncode
    FINGERPRINT.write_text(current)
    print(f"book built in {elapsed:.1f} s: {BUILD / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
