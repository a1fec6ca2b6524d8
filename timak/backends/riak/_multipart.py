"""Parsing the multipart/mixed answer that carries every sibling of a key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message

from ...errors import (
    BackendError,
)


@dataclass(frozen=True)
class Part:
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    @property
    def deleted(self) -> bool:
        return self.headers.get("x-riak-deleted", "").strip().lower() == "true"


def boundary(content_type: str) -> bytes:
    message = Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if message.get_content_type() != "multipart/mixed" or not isinstance(boundary, str) \
            or not boundary:
        raise BackendError(f"Riak sent 300 without a multipart/mixed boundary: {content_type!r}")
    return boundary.encode("latin-1", "replace")


def parse_part_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = None
    for raw in block.split(b"\r\n"):
        line = raw.decode("latin-1")
        if line[:1] in (" ", "\t") and last is not None:  # folded header line
            headers[last] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise BackendError(f"malformed multipart header line {line[:80]!r} from Riak")
        last = name.strip().lower()
        headers[last] = value.strip()
    return headers


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """Split a ``multipart/mixed`` body (RFC 2046) into parts.

    Riak writes ``CRLF--B CRLF headers CRLF CRLF value`` per sibling and
    ``CRLF--B--CRLF`` at the end (``riak_kv_wm_object:produce_multipart_body``);
    a body that starts with ``--B`` (no CRLF) is accepted too. A body without
    the closing delimiter, or a part without the blank line after its
    headers, raises ``BackendError``: it is a broken answer, not a value.
    """
    delimiter = b"\r\n--" + boundary(content_type)
    data = body if body.startswith(b"\r\n") else b"\r\n" + body
    chunks = data.split(delimiter)
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return parts  # the close delimiter; what follows is the epilogue
        # The delimiter line may carry transport padding before its CRLF.
        line_end = chunk.find(b"\r\n")
        if line_end < 0 or chunk[:line_end].strip(b" \t"):
            raise BackendError("malformed multipart body from Riak: bad delimiter line")
        rest = chunk[line_end + 2:]
        if rest.startswith(b"\r\n"):
            parts.append(Part({}, rest[2:]))
            continue
        head, blank, payload = rest.partition(b"\r\n\r\n")
        if not blank:
            raise BackendError("malformed multipart body from Riak: part without headers end")
        parts.append(Part(parse_part_headers(head), payload))
    raise BackendError("malformed multipart body from Riak: no closing boundary")


