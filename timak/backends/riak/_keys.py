"""Parsing the streamed key listing (``keys=stream``): JSON objects in uneven chunks."""

from __future__ import annotations

import json
from typing import Any

from ...errors import (
    BackendError,
    BackendTimeoutError,
)


def decode_objects(decoder: json.JSONDecoder, buffer: str) -> tuple[str, list[Any]]:
    """Pull every complete JSON value off the front of ``buffer``."""
    found: list[Any] = []
    index = 0
    while True:
        while index < len(buffer) and buffer[index].isspace():
            index += 1
        if index >= len(buffer):
            return "", found
        try:
            obj, index = decoder.raw_decode(buffer, index)
        except ValueError:
            return buffer[index:], found  # incomplete: wait for more
        except RecursionError:
            # json recurses per nesting level; no real key listing nests.
            raise BackendError("Riak key listing nests too deeply to be one") from None
        found.append(obj)


def keys_of(obj: Any, where: str) -> list[str]:
    if isinstance(obj, dict) and "error" in obj:
        error = str(obj["error"])
        if "timeout" in error:
            raise BackendTimeoutError(f"Riak {where}: listing timed out: {error}")
        raise BackendError(f"Riak {where}: {error}")
    keys = obj.get("keys") if isinstance(obj, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise BackendError(f"Riak {where}: unexpected key listing {str(obj)[:80]!r}")
    return keys


