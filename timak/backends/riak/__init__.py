"""Riak KV over its documented HTTP API, spoken directly with urllib3.

The old ``riak`` client does not import on Python 3.10+, so this module talks
HTTP itself. urllib3 is the ``timak[riak]`` extra.

How the contract maps onto Riak:

======================  ==============================================================
contract                Riak HTTP
======================  ==============================================================
``fetch``               ``GET /types/T/buckets/B/keys/K`` with ``Accept: multipart/
                        mixed, */*;q=0.5``: 200 is one sibling, 300 a multipart body
                        of all of them, 404 nothing. Tombstone parts
                        (``X-Riak-Deleted: true``) are not values. The context is the
                        response's ``X-Riak-Vclock``.
``store``               ``PUT`` with ``Content-Type: application/octet-stream`` and
                        ``X-Riak-Vclock`` when a context is given. Riak then replaces
                        exactly the siblings that vclock descends from; without one
                        (or with a stale one) it adds a sibling, as long as the
                        bucket keeps siblings (``allow_mult=true``).
``delete``              ``DELETE``, with the vclock when a context is given. Riak
                        writes a tombstone; a stale vclock leaves the tombstone as a
                        sibling beside newer values, and ``fetch`` skips it.
``keys``                ``GET .../keys?keys=stream`` (an expensive, cluster-wide
                        admin operation), then one ``HEAD`` per key, because Riak
                        lists tombstoned keys until it reaps them.
======================  ==============================================================

A fetch of a key that holds only a tombstone returns ``Fetched([], None)``
like any missing key, as the contract says, although Riak answers that 404
with a vclock. The next blind write then sits beside the tombstone as a
sibling; reads skip it and the first write with a context removes it. So the
cost of dropping that vclock is one short-lived tombstone sibling, never data.

Before the first operation on a bucket, the backend reads the bucket's
effective properties once (``GET /types/T/buckets/B/props``) and raises
``ConfigError`` if Riak would drop concurrent writes (``allow_mult`` false,
``last_write_wins``, ``write_once``, a strongly consistent or CRDT type). The
answer is cached per bucket, not per bucket type, because bucket-level
properties can override the type's. ``check_props=false`` skips this.

URL::

    riak://[user:password@]host[:8098]/?bucket_type=timak&r=quorum&w=2&timeout=5
    riaks://...  (or ?tls=1) for HTTPS

See ``RiakBackend`` for every option. Paths are built from segments quoted
with ``quote(s, safe="")`` plus ``.`` as ``%2E`` (urllib3 would otherwise
resolve a key ``..`` as a dot segment and address the bucket), and every
request carries ``X-Riak-URL-Encoding: on`` so that Riak decodes them even
on a cluster left in the pre-1.0 compatibility mode.
"""

from __future__ import annotations

from ...errors import LargeObjectWarning, MissingDriverError

try:
    import urllib3  # noqa: F401 - checked here, used by the modules below
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDriverError(
        "the Riak backend needs urllib3: pip install 'urllib3>=2.0' (the timak[riak] "
        "extra; in a checkout of timak, pip install '.[riak]')"
    ) from exc

from .._query import parse_size
from ._backend import RiakBackend
from ._common import DEFAULT_BUCKET_TYPE
from ._props import props_problems, setup_commands
from ._url import from_url

__all__ = [
    "DEFAULT_BUCKET_TYPE",
    "LargeObjectWarning",
    "RiakBackend",
    "from_url",
    "parse_size",
    "props_problems",
    "setup_commands",
]
