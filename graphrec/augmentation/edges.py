"""Writing the augmented edge file (format and reader: :mod:`graphrec.training.edges`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from graphrec.io import atomic_open
from graphrec.training.edges import FORMAT


def write_edges(path: str | Path, header: dict[str, Any], edges: list[dict[str, Any]]) -> None:
    """Write the header and edge records atomically (a crash leaves the old file or the new one)."""
    with atomic_open(path, "w") as handle:
        handle.write(
            json.dumps({"kind": "header", "format": FORMAT, **header}, ensure_ascii=False) + "\n"
        )
        for edge in edges:
            handle.write(json.dumps({"kind": "edge", **edge}, ensure_ascii=False) + "\n")
