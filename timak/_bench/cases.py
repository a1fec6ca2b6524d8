"""The scenarios: each a subject (timak, default settings), a floor that is
not timak's code, and, where Redis has the same operation, the peer.

==================  ===============================  ==========================  ==================
scenario            subject (timak)                  floor                       peer (Redis)
==================  ===============================  ==========================  ==================
``fanout``          ``fanout`` of one item to K      the same one-item value to  pipelined ZADD +
                    timelines that are full, in the  K full timelines: on       ZREMRANGEBYRANK on
                    steady state: folding on at the  SQLite, a bare ``sqlite3``  K full sorted sets
                    default ``fold_at``              executemany INSERT in one
                                                     transaction; elsewhere
                                                     ``store_many`` (never
                                                     folds)
``add``             ``add`` to a full timeline       ``fetch`` + plain decode +  ZADD + trim
                                                     ``store`` of the same bytes
``newest``          ``page(limit=50)`` of a full     ``fetch`` + plain decode    ZREVRANGE 0 49 +
                    timeline, clean or with P        of every sibling            ``json.loads``
                    pending one-item siblings (the
                    read merges and repairs them)
``fold``            ``fold`` of a full timeline +    ``fetch`` + ``store`` (with -
                    ``fold_at - 1`` blind siblings   its context) of the bytes
                                                     the fold writes
==================  ===============================  ==========================  ==================

The activity-feed scenarios (``follow``, ``unfollow``, ``aggregated``,
``notification``) are in ``timak._bench.activity``. "Plain decode" is
``floors.plain_decode``. The steady state of ``fanout``:
every key starts full, and key ``i`` has first had ``i % cycle`` blind
writes (``cycle``: the writes between two folds of a key, ``fold_at - 1`` or
``fold_at``), so each post folds ``1 / cycle`` of the keys, as a stream of
posts to followers whose timelines are at different points of their fold
cycle does; with every key in step, one post in 16 would fold them all and
the median would hide the folds entirely.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..backends import Backend
from ..backends.sqlite import SQLiteBackend
from ..timelines import FOLD_AT, Timeline
from . import contended, data
from .activity import prepared_sides
from .contended import Run
from .data import BUCKET, Items
from .floors import SQLiteInsert, plain_decode_all
from .harness import Op, Target
from .names import ACTIVITY_SCENARIOS, SCENARIOS
from .redis_peer import RedisPeer

__all__ = ["SCENARIOS", "Case", "Prepared", "Processes", "Sizes", "cases"]


@dataclass(frozen=True)
class Sizes:
    """The sizes the scenarios run at."""

    fanout_keys: int
    items: int
    limit: int
    pending: tuple[int, ...]
    #: ``contended``: the writer counts, and how long each side writes.
    writers: tuple[int, ...] = (1, 2, 4, 8)
    contended_s: float = 3.0


@dataclass
class Prepared:
    """A case ready to time: its sides and what to undo afterwards."""

    subject: Op
    floor: Op
    peer: Op | None
    cleanup: Callable[[], None]


@dataclass(frozen=True)
class Processes:
    """A case that runs its own writer processes (``contended``): its sides,
    measured one after the other, not call by call."""

    subject: Run
    floor: Run
    peer: Run | None
    #: redis-server's CPU per peer write, ms.
    server_cpu_ms: float | None = None


@dataclass(frozen=True)
class Case:
    scenario: str
    backend: str
    params: dict[str, int]
    unit: str
    units: int
    floor_name: str
    targets: tuple[Target, ...]
    prepare: Callable[[RedisPeer | None], Prepared] = field(repr=False)
    #: Set for a case that measures itself in processes (then ``prepare``
    #: is not used): ``contended``.
    processes: Callable[[RedisPeer | None], Processes] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return " ".join([self.scenario, *(f"{k}={v}" for k, v in self.params.items())])


#: Issue 11's targets, as ``subject p50 / other p50``; the ones against Redis
#: hold for the in-process stores only (Cassandra is a networked store).
_LOCAL = ("memory", "sqlite")


def _targets(backend: str, floor: float | None, peer: float | None) -> tuple[Target, ...]:
    found: list[Target] = []
    if floor is not None:
        found.append(Target("floor", floor))
    if peer is not None and backend in _LOCAL:
        found.append(Target("peer", peer))
    return tuple(found)


def cases(backends: Mapping[str, Backend], sizes: Sizes) -> list[Case]:
    made = [
        case
        for make in (_fanout, _add, _newest, _fold, _contended, _activity)
        for label, backend in backends.items()
        for case in make(label, backend, sizes)
    ]
    return sorted(made, key=lambda c: SCENARIOS.index(c.scenario))


def _timeline(backend: Backend, sizes: Sizes) -> Timeline:
    """timak as a new user runs it: default settings but the capacity."""
    return Timeline(connection=backend, bucket=BUCKET, max_items=sizes.items)


class _Fresh:
    """A Timeline renewed before every timed call of a case that repeats one
    read or fold on the same stored bytes: a Timeline may remember values it
    has decoded (by their bytes), and a reader meeting the same siblings
    every time would be timed on a warm cache it would not have when the
    siblings are new writes from other processes. (Fan-out needs no such
    care: every post writes new bytes, and a writer remembering what it
    wrote itself is the real single-writer steady state.)"""

    def __init__(self, backend: Backend, sizes: Sizes) -> None:
        self._make = functools.partial(_timeline, backend, sizes)
        self.tl = self._make()

    def renew(self) -> None:
        self.tl = self._make()


def _fanout(label: str, backend: Backend, sizes: Sizes) -> list[Case]:
    count, items = sizes.fanout_keys, sizes.items

    def prepare(peer: RedisPeer | None) -> Prepared:
        mine, floor_keys = data.keys("fanout", count), data.keys("fanout-floor", count)
        full = data.full_value(items)
        data.reset(backend, mine + floor_keys, [full])
        tl = _timeline(backend, sizes)
        numbers = Items(items)
        (blind,) = data.blind_values(numbers.next(), 1, items)
        cycle = _fold_cycle(backend, tl.fold_at, blind)
        # Stagger the fold cycle: key i gets i % cycle blind writes first.
        for step in range(1, cycle):
            behind = [k for i, k in enumerate(mine) if i % cycle >= step]
            n = numbers.next()
            tl.fanout(behind, data.item_id(n), data.score(n), data.payload(n))
        data.settle(backend)

        def post() -> None:
            n = numbers.next()
            tl.fanout(mine, data.item_id(n), data.score(n), data.payload(n))

        peer_op = None
        if peer is not None:
            peer_keys = data.keys("fanout", count)
            peer.fill(peer_keys, items)
            peer_op = Op(lambda: peer.post(peer_keys, numbers.next(), items))
        floor_op, close_floor = _fanout_floor(backend, floor_keys, blind)

        def cleanup() -> None:
            close_floor()
            _cleanup(backend, mine + floor_keys, peer)

        return Prepared(Op(post), floor_op, peer_op, cleanup)

    floor_name = "sqlite3 executemany" if _bare_sqlite(backend) else "store_many"
    return [Case("fanout", label, {"keys": count, "items": items}, "key writes", count,
                  floor_name, _targets(label, 1.5, 1.0), prepare)]


def _bare_sqlite(backend: Backend) -> str | None:
    """The file of a SQLite backend that the bare floor can open, else None."""
    if isinstance(backend, SQLiteBackend) and backend.path != ":memory:":
        return backend.path
    return None


def _fanout_floor(backend: Backend, keys: Sequence[str],
                  blind: bytes) -> tuple[Op, Callable[[], None]]:
    """Fan-out's floor: on a SQLite file, one bare ``sqlite3`` executemany
    INSERT of the same bytes in one transaction (``floors.SQLiteInsert``);
    elsewhere the store's own ``store_many`` (the memory store's is a dict
    append, Cassandra's the driver's concurrent writes)."""
    path = _bare_sqlite(backend)
    if path is None:
        entries = [(k, blind) for k in keys]
        return Op(lambda: backend.store_many(BUCKET, entries)), lambda: None
    bare = SQLiteInsert(path)
    rows = [(BUCKET, k, blind) for k in keys]
    return Op(lambda: bare.insert(rows)), bare.close


def _fold_cycle(backend: Backend, fold_at: int, blind: bytes) -> int:
    """Blind writes between two folds of a key: ``fold_at - 1`` where the
    store reports sibling counts (a folded key holds 1 sibling and folds again
    when a write makes ``fold_at``), ``fold_at`` where Timeline counts its
    own writes instead (Cassandra)."""
    (probe,) = data.keys("probe", 1)
    (count,) = backend.store_many(BUCKET, [(probe, blind)])
    data.clear(backend, [probe])
    return fold_at if count is None else fold_at - 1


def _add(label: str, backend: Backend, sizes: Sizes) -> list[Case]:
    items = sizes.items

    def prepare(peer: RedisPeer | None) -> Prepared:
        key, floor_key = data.keys("add", 2)
        data.reset(backend, [key, floor_key], [data.full_value(items)])
        tl = _timeline(backend, sizes)
        numbers = Items(items)

        def add() -> None:
            n = numbers.next()
            tl.add(key, data.item_id(n), data.score(n), data.payload(n))

        def fetch_decode_store() -> None:
            fetched = backend.fetch(BUCKET, floor_key)
            plain_decode_all(fetched.siblings)
            backend.store(BUCKET, floor_key, fetched.siblings[0], fetched.context)

        peer_op = None
        if peer is not None:
            (peer_key,) = data.keys("add", 1)
            peer.fill([peer_key], items)
            peer_op = Op(lambda: peer.post([peer_key], numbers.next(), items))
        return Prepared(Op(add), Op(fetch_decode_store), peer_op,
                        cleanup=lambda: _cleanup(backend, [key, floor_key], peer))

    return [Case("add", label, {"items": items}, "adds", 1, "fetch+plain decode+store",
                  _targets(label, 2.0, None), prepare)]


def _newest(label: str, backend: Backend, sizes: Sizes) -> list[Case]:
    items, limit = sizes.items, sizes.limit

    def prepare(pending: int, peer: RedisPeer | None) -> Prepared:
        key, floor_key = data.keys("newest", 2)
        siblings = [data.full_value(items), *data.blind_values(items, pending, items)]
        data.reset(backend, [key, floor_key], siblings)
        reader = _Fresh(backend, sizes)
        if len(reader.tl.page(key, limit=limit).items) != limit:
            raise AssertionError("newest is not reading what it should")

        def setup() -> None:
            # The page above repaired the key when it had pending siblings:
            # every timed read starts again from them, by a reader that has
            # not seen their bytes before (see ``_Fresh``).
            if pending:
                data.reset(backend, [key], siblings)
            reader.renew()

        def fetch_decode() -> None:
            plain_decode_all(backend.fetch(BUCKET, floor_key).siblings)

        peer_op = None
        if peer is not None:
            (peer_key,) = data.keys("newest", 1)
            peer.fill([peer_key], items)
            peer_op = Op(lambda: peer.newest(peer_key, limit))
        return Prepared(Op(lambda: reader.tl.page(key, limit=limit), setup), Op(fetch_decode),
                        peer_op, cleanup=lambda: _cleanup(backend, [key, floor_key], peer))

    return [
        Case("newest", label, {"items": items, "limit": limit, "pending": pending}, "reads", 1,
              "fetch+plain decode",
              _targets(label, 0.5 if pending == 0 else None, 1.0 if pending == 0 else 2.0),
              functools.partial(prepare, pending))
        for pending in sizes.pending
    ]


def _fold(label: str, backend: Backend, sizes: Sizes) -> list[Case]:
    items, pending = sizes.items, FOLD_AT - 1

    def prepare(peer: RedisPeer | None) -> Prepared:
        key, floor_key = data.keys("fold", 2)
        siblings = [data.full_value(items), *data.blind_values(items, pending, items)]
        folded = data.folded_value(siblings, items)
        folder = _Fresh(backend, sizes)

        def reset() -> None:
            data.reset(backend, [key], siblings)
            folder.renew()

        def fetch_store() -> None:
            fetched = backend.fetch(BUCKET, floor_key)
            backend.store(BUCKET, floor_key, folded, fetched.context)

        return Prepared(
            Op(lambda: folder.tl.fold(key), reset),
            Op(fetch_store, lambda: data.reset(backend, [floor_key], siblings)),
            None,
            cleanup=lambda: _cleanup(backend, [key, floor_key], None),
        )

    # Issue 11's fold target is for Cassandra, where the floor is a round trip
    # each way; on the in-process stores the floor is almost free.
    target = (Target("floor", 2.0),) if label == "cassandra" else ()
    return [Case("fold", label, {"items": items, "siblings": pending + 1}, "folds", 1,
                 "fetch+store", target, prepare)]


def _contended(label: str, backend: Backend, sizes: Sizes) -> list[Case]:
    """W writer processes on one key of a fresh SQLite file (``contended``);
    SQLite only: the other stores have no file to share between processes
    (memory) or are not in-process (Cassandra)."""
    if _bare_sqlite(backend) is None:
        return []
    seconds = sizes.contended_s

    def measured(writers: int, peer: RedisPeer | None) -> Processes:
        subject = contended.timak_writers(writers, seconds, FOLD_AT)
        floor = contended.timak_writers(1, seconds, FOLD_AT)
        if peer is None:
            return Processes(subject, floor, None)
        before = peer.server_cpu_s()
        on_redis = contended.redis_writers(peer.port, writers, seconds)
        server_ms = (peer.server_cpu_s() - before) * 1e3 / len(on_redis.samples.wall)
        return Processes(subject, floor, on_redis, server_ms)

    def no_prepare(peer: RedisPeer | None) -> Prepared:
        raise TypeError("contended runs its own writer processes: see Case.processes")

    return [
        Case("contended", label, {"writers": writers, "items": contended.CAPACITY}, "writes",
             1, "timak, 1 writer", (), no_prepare, functools.partial(measured, writers))
        for writers in sizes.writers
    ]


def _activity(label: str, backend: Backend, sizes: Sizes) -> list[Case]:
    """The activity-feed scenarios (``timak._bench.activity``), no peer."""

    def prepare(scenario: str, peer: RedisPeer | None) -> Prepared:
        subject, floor, cleanup = prepared_sides(scenario, backend, sizes.items)
        return Prepared(subject, floor, None, cleanup)

    return [
        Case(scenario, label, {"items": sizes.items}, "calls", 1, "fetch+plain decode",
             (), functools.partial(prepare, scenario))
        for scenario in ACTIVITY_SCENARIOS
    ]


def _cleanup(backend: Backend, keys: Sequence[str], peer: RedisPeer | None) -> None:
    data.clear(backend, keys)
    if peer is not None:
        peer.flush()
