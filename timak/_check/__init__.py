"""A Jepsen-style history checker: concurrent writers, crashes, and an oracle.

``check(CheckConfig(url))`` runs ``workers`` worker *processes* that each do
``ops`` random operations on ``keys`` hot keys of one store: read-modify-write
``add``, ``delete`` with and without a score, blind ``fanout`` (adds and
deletes) to several keys, and plain reads (which read-repair). Optionally the
checker SIGKILLs workers at random moments and starts them again.

Every worker logs each operation to its own history file (JSON lines): an
``invoke`` line *before* the operation, then one completion line::

    ok     the store acknowledged it (fsync'd before the next operation)
    fail   a typed timak error; an ``InvalidInputError`` means nothing was
           written, any other ``TimakError`` may or may not have been applied
    info   a timeout or an untyped error: may or may not have been applied

An ``invoke`` with no completion (the worker was killed) may or may not have
been applied either. So the history yields *acknowledged* records, which must
be reflected in the store, and *maybe* records, which may be.

Afterwards every key is read (twice, and through every ``read_urls`` store)
and compared with a sequential **oracle**, written as plain code independent
of ``timak.value.merge``: per key, per id the largest acknowledged record by
``(score, deleted)``, then the ``max_items`` largest by ``(score, id)``,
tombstones included. It reports:

* **lost**: an item the oracle keeps visible that the store does not show,
  unless a maybe-record can explain it (a maybe-write of that id that beats
  it, or enough maybe-writes ranked above it to trim it);
* **resurrected**: an item the store shows that acknowledged writes deleted,
  superseded or trimmed, or that no write (acknowledged or maybe) wrote;
* **nonconverged**: a key whose reads disagree after repair;
* **corrupt** siblings, **untyped** client errors, and workers that died on
  their own; and a small decode fuzz over every stored sibling.

All of these must be zero for ``CheckReport.ok``.

The checker is a tool (``timak check`` and the reliability tests), not
library API: it lives in this private package. Modules:

* ``report``: ``CheckConfig``, ``Anomaly``, ``CheckReport``;
* ``runner``: ``check`` and the worker supervisor (kills, restarts);
* ``worker``: what one worker process does and logs;
* ``history``: history files into acknowledged and maybe records;
* ``oracle``: ``analyze``, the sequential oracle;
* ``final``: reading every key after the run, and the decode fuzz.
"""

from __future__ import annotations

from .final import mutations, read_final
from .history import History, load_history
from .oracle import analyze
from .report import Anomaly, CheckConfig, CheckReport, FinalState, Written
from .runner import check, run_workers

__all__ = [
    "Anomaly",
    "CheckConfig",
    "CheckReport",
    "FinalState",
    "History",
    "Written",
    "analyze",
    "check",
    "load_history",
    "mutations",
    "read_final",
    "run_workers",
]
