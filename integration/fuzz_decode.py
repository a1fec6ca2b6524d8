#!/usr/bin/env python3
"""Coverage-guided fuzzing of what timak parses from a store, with atheris.

    pip install atheris
    python integration/fuzz_decode.py -atheris_runs=200000 [CORPUS_DIR ...]

Targets, chosen by the first input byte:

0. ``timak._encoding.decode`` on the raw input;
1. ``decode`` on ``TK\\x01`` + input (straight to the msgpack layer);
2. ``decode`` on ``TK\\x02`` + zlib(input) (through the zlib layer);
3. the Riak backend's multipart parser on the input (if it is installed).

Only ``CorruptValueError`` may come out of ``decode`` (and a value it returns
must merge and re-encode), only ``TimakError`` out of the Riak parser; any
other exception is a crash that atheris reports with its input. Not part of
the test suite (``tests/test_fuzz.py`` is, with hypothesis).
"""

from __future__ import annotations

import contextlib
import sys
import zlib

import atheris

with atheris.instrument_imports():
    from timak import merge
    from timak._encoding import decode, encode
    from timak.errors import CorruptValueError, TimakError

    try:
        from timak.backends.riak import _multipart as riak
    except ImportError:  # urllib3 missing: fuzz decode only
        riak = None  # type: ignore[assignment]

_PREFIXES = (b"", b"TK\x01")


def one_input(data: bytes) -> None:
    if not data:
        return
    target, body = data[0] % 4, data[1:]
    if target == 3 and riak is not None:
        with contextlib.suppress(TimakError):
            riak.parse_multipart(body, "multipart/mixed; boundary=B")
        return
    blob = b"TK\x02" + zlib.compress(body) if target == 2 else _PREFIXES[target % 2] + body
    try:
        value = decode(blob)
    except CorruptValueError:
        return
    decode(encode(merge([value], 10**6)))


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
