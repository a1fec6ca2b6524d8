"""Bearer tokens: where they come from, and who may do what.

Tokens are listed as ``SCOPE:TOKEN`` entries (``read`` or ``write``),
separated by whitespace or newlines, in a file (``--tokens FILE``; ``#``
starts a comment) or in the ``TIMAK_SERVE_TOKENS`` environment variable.
A ``read`` token may call every ``GET`` route and subscribe; a ``write``
token may also write. A request names its token in ``Authorization: Bearer
TOKEN``; a browser's ``EventSource`` and ``WebSocket``, which cannot set
headers, may pass ``?access_token=TOKEN`` on the subscription routes only.

Every known token is compared with ``hmac.compare_digest`` (constant time,
and all of them, so the time taken does not say which one nearly matched).
No token is ever logged or echoed: the access log prints the path without
its query string, and error bodies never repeat request headers.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import ConfigError

__all__ = ["ENV_VAR", "Scope", "Tokens", "parse_tokens"]

Scope = Literal["read", "write"]

#: The environment variable that may hold the token list.
ENV_VAR = "TIMAK_SERVE_TOKENS"
_SCOPES: tuple[Scope, ...] = ("read", "write")


@dataclass(frozen=True)
class Tokens:
    """The tokens a service accepts, each with its scope. ``open`` is true
    when no tokens were configured: every request may read and write (only
    allowed on a loopback address, see ``timak serve --help``)."""

    entries: tuple[tuple[bytes, Scope], ...] = ()

    @property
    def open(self) -> bool:
        return not self.entries

    def scope_of(self, token: str | None) -> Scope | None:
        """The scope of ``token``, or ``None`` if it is not one of ours."""
        if self.open:
            return "write"
        if not token:
            return None
        given = token.encode("utf-8", "surrogateescape")
        found: Scope | None = None
        for secret, scope in self.entries:
            if hmac.compare_digest(given, secret):
                found = scope
        return found

    @classmethod
    def load(cls, path: str | None = None, environ: dict[str, str] | None = None) -> Tokens:
        """The tokens of the file at ``path``, else of ``TIMAK_SERVE_TOKENS``,
        else none (``open``)."""
        env = os.environ if environ is None else environ
        if path:
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from None
            return cls(parse_tokens(text, f"token file {path}"))
        if env.get(ENV_VAR):
            return cls(parse_tokens(env[ENV_VAR], ENV_VAR))
        return cls()


def parse_tokens(text: str, where: str) -> tuple[tuple[bytes, Scope], ...]:
    """``SCOPE:TOKEN`` entries of ``text``; ``ConfigError`` (naming the line,
    never the token) for anything else."""
    entries: list[tuple[bytes, Scope]] = []
    for number, line in enumerate(text.splitlines(), 1):
        for entry in line.split("#", 1)[0].split():
            scope, colon, token = entry.partition(":")
            if not colon or scope not in _SCOPES or len(token) < 16:
                raise ConfigError(
                    f"{where}, line {number}: each entry is read:TOKEN or write:TOKEN "
                    "with a token of at least 16 characters"
                )
            entries.append((token.encode(), "read" if scope == "read" else "write"))
    if not entries:
        raise ConfigError(f"{where} lists no tokens")
    return tuple(entries)
