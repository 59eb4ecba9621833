"""What every benchmark script writes beside its numbers: the machine, the date,
the versions, and its own section of ``docs/benchmarks.md``."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def versions(packages: list[str]) -> list[str]:
    """``["wager 0.1.0", ...]``; a missing package says so."""
    found = []
    for p in packages:
        try:
            found.append(f"{p} {metadata.version(p)}")
        except metadata.PackageNotFoundError:
            found.append(f"{p} (not installed)")
    return found


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def write_section(doc: Path, name: str, heading: str, body: str) -> None:
    """``rewrite_section``, first adding the section (``heading`` and its markers) before
    "## Reading these numbers" (or at the end) when the document does not have it yet."""
    text = doc.read_text()
    if f"<!-- BEGIN {name} -->" not in text:
        block = f"{heading}\n\n<!-- BEGIN {name} -->\n<!-- END {name} -->\n\n"
        anchor = "## Reading these numbers"
        text = text.replace(anchor, block + anchor, 1) if anchor in text else text.rstrip("\n") + "\n\n" + block
        doc.write_text(text)
    rewrite_section(doc, name, body)


def rewrite_section(doc: Path, name: str, body: str) -> None:
    """Replace the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->``."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    text = doc.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{doc}: markers {begin} / {end} not found")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{begin}\n{body}\n{end}{tail}")
