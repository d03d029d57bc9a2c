"""Is the committed web bundle (src/citydata/web/static) built from the current front-end sources?

``make web`` builds the bundle with Vite and then runs ``python tools/check_bundle.py --write``, which records a
SHA-256 of every source file (pages, modules, styles, public files, package.json, package-lock.json and the
Vite config) in ``static/bundle.json``. ``make check`` runs it without ``--write``: it recomputes the hash
(no Node needed) and fails when the sources changed since the bundle was built, or when a file the bundle
names is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

WEB = Path(__file__).resolve().parents[1] / "src" / "citydata" / "web"
STATIC = WEB / "static"
RECORD = STATIC / "bundle.json"
SKIP_DIRS = {"node_modules", "static", "__pycache__", ".vite"}
SOURCE_SUFFIXES = {".js", ".mjs", ".ts", ".css", ".html", ".json", ".webmanifest", ".svg", ".png"}


def source_files() -> list[Path]:
    files = []
    for path in sorted(WEB.rglob("*")):
        rel = path.relative_to(WEB)
        if not path.is_file() or rel.parts[0] in SKIP_DIRS or path.suffix not in SOURCE_SUFFIXES:
            continue
        files.append(path)
    return files


def source_hash() -> str:
    digest = hashlib.sha256()
    for path in source_files():
        digest.update(path.relative_to(WEB).as_posix().encode() + b"\0")
        digest.update(path.read_bytes().replace(b"\r\n", b"\n") + b"\0")
    return digest.hexdigest()


def built_files() -> list[str]:
    return sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.is_file() and p != RECORD)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the hash after a build (make web)")
    args = parser.parse_args(argv)
    if args.write:
        record = {"source_hash": source_hash(), "sources": len(source_files()), "files": built_files()}
        RECORD.write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded {record['source_hash'][:12]} for {record['sources']} sources, {len(record['files'])} built "
              f"files in {RECORD.relative_to(WEB.parents[2])}")
        return 0
    if not RECORD.is_file():
        print("web bundle: not built (run `make web`)", file=sys.stderr)
        return 1
    record = json.loads(RECORD.read_text())
    missing = [f for f in record.get("files", []) if not (STATIC / f).is_file()]
    if missing:
        print(f"web bundle: {len(missing)} built files missing ({missing[0]} ...); run `make web`", file=sys.stderr)
        return 1
    if record.get("source_hash") != source_hash():
        print("web bundle: stale, the front-end sources changed since the bundle was built; run `make web` and "
              "commit src/citydata/web/static", file=sys.stderr)
        return 1
    print(f"web bundle: up to date ({record['source_hash'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
