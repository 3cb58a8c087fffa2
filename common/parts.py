"""A document too large for one DynamoDB item, as compressed JSON parts written together.

Part 0 carries the header; every part carries its share of the rows and the write's stamp
`w`, so a reader caught between two writes (a Query is not isolated from a transaction's
writes) sees parts of different stamps, or too few, and reads again.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any


def pack(stamp: float, header: dict[str, Any], rows: list[Any], per_part: int) -> list[bytes]:
    chunks = [rows[i : i + per_part] for i in range(0, len(rows), per_part)] or [[]]
    parts = []
    for i, chunk in enumerate(chunks):
        body = {"w": stamp, "rows": chunk} | (header | {"parts": len(chunks)} if i == 0 else {})
        parts.append(zlib.compress(json.dumps(body, separators=(",", ":")).encode(), 6))
    return parts


def unpack(parts: Sequence[bytes]) -> tuple[dict[str, Any], list[Any]] | None:
    """(part 0's header and stamp, every part's rows in order), or None when parts are
    missing or from different writes."""
    if not parts:
        return None
    bodies = [json.loads(zlib.decompress(p)) for p in parts]
    header = bodies[0]
    if header.get("parts") != len(bodies) or len({b.get("w") for b in bodies}) != 1:
        return None
    return header, [row for body in bodies for row in body["rows"]]
