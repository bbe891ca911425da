"""The benchmark bodies, the same bytes for every server."""

from __future__ import annotations

import json

HELLO = b"Hello, World!"
JSON_BODY = (
    json.dumps(
        {
            "items": [
                {"id": i, "name": f"item-{i:04d}", "tags": ["a", "b"], "ok": True}
                for i in range(64)
            ]
        }
    )
    .encode()[:4096]
    .ljust(4096, b" ")
)
