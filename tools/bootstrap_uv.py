#!/usr/bin/env python3
"""Install uv into .bootstrap/ without touching the system Python (works where it is externally managed).

1. ``python3 -m venv .bootstrap`` and ``pip install uv`` into it (the usual way);
2. where venv or pip is missing (Debian without python3-venv), download the uv wheel from PyPI with the
   standard library and unpack its binary into .bootstrap/bin/uv.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOT = ROOT / ".bootstrap"
UV = BOOT / "bin" / "uv"


def via_venv() -> bool:
    try:
        subprocess.run([sys.executable, "-m", "venv", str(BOOT)], check=True, capture_output=True)
        subprocess.run([str(BOOT / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "uv"], check=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as err:
        print(f"bootstrap: venv/pip route failed ({err}); downloading the uv wheel instead", file=sys.stderr)
        shutil.rmtree(BOOT, ignore_errors=True)
        return False
    return UV.exists()


def platform_tags() -> list[str]:
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "x86_64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}.get(machine, machine)
    libc = "musllinux" if "musl" in (platform.libc_ver()[0] or "").lower() else "manylinux"
    return [f"{libc}_", arch]


def via_wheel() -> bool:
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    json_url = index.replace("/simple", "/pypi") + "/uv/json"
    with urllib.request.urlopen(json_url, timeout=60) as resp:
        meta = json.load(resp)
    prefix, arch = platform_tags()
    for f in meta["urls"]:
        name = f["filename"]
        if name.endswith(".whl") and arch in name and prefix in name:
            with urllib.request.urlopen(f["url"], timeout=300) as resp:
                data = resp.read()
            with zipfile.ZipFile(io.BytesIO(data)) as whl:
                member = next(n for n in whl.namelist() if n.endswith("/scripts/uv") or n.endswith("/bin/uv"))
                UV.parent.mkdir(parents=True, exist_ok=True)
                UV.write_bytes(whl.read(member))
            UV.chmod(UV.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            return True
    return False


def main() -> int:
    if UV.exists():
        return 0
    if via_venv() or via_wheel():
        print(f"bootstrap: uv installed at {UV}", file=sys.stderr)
        return 0
    print("bootstrap: could not install uv (no venv/pip and no matching wheel)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
