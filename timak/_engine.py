"""The engine: the one owner of how timeline values are fetched, checked,
merged, repaired and folded in one bucket of one store.

``Timeline`` (the API), the change feed (``timak.feed``) and, through
``Timeline``, the activity feeds stand on an ``Engine``; nothing else
fetches, merges or stores timeline values. The rules that keep data safe
are each kept here, once:

1. **Nothing unchecked is stored.** A value that is stored after a read
   (read repair, a fold, ``compact``, ``add``/``delete``) is made only of
   siblings checked in full (``timak._encoding.validate``: every chunk,
   row, order and item's data), so a damaged sibling can never be copied
   into a good one. Reads that store nothing stay lazy: a page decodes
   only what it returns.
2. **A corrupt sibling is never merged and never overwritten.** A key
   with one is not repaired; ``add``/``delete`` on it raise
   ``CorruptValueError`` before writing; a fold merges only the good
   siblings, and only where the store can replace exactly those
   (``Narrowing``), so the corrupt bytes stay for inspection;
   ``skip_corrupt=True`` returns the rest.
3. **Only writes state capacities.** A read, a read repair, ``fold`` and
   ``compact`` of a key whose siblings state no capacity (a key only ever
   written blind) keep every record and store a value that states none;
   a reader with a smaller ``max_items`` only *shows* fewer. The writer's
   own full fold after its blind writes states the writer's capacity.
4. **One capacity per key.** A write uses the capacity the key states
   (the smallest, should siblings disagree) and is refused with
   ``ConfigError`` if the engine was made for another one.
5. **Siblings stay bounded.** A key that took a blind write is folded
   when the write takes it to ``fold_at`` siblings, and past ``2 *
   fold_at`` every quarter of it (``FoldPolicy`` says when and states the
   bound): partially where the store can narrow a context (the small
   siblings into one delta beside the untouched base), else fully. Where
   the store can swap (``Swapping``), of two folds or repairs made from
   overlapping fetches only the first is stored: the second's siblings
   are already merged, and storing it would leave two full merges.
6. **Housekeeping never fails a write.** Folds run after the blind writes
   are stored; a store or corruption error while folding is logged and
   counted (``stats.fold_errors``), never raised.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import _encoding as encoding
from ._results import TimelineStats
from .backends import Backend, Fetched
from .backends.base import capabilities
from .errors import BackendError, ConfigError, CorruptValueError
from .value import Record, TimelineValue, join, merge

__all__ = ["DEFAULT_CAPACITY", "DELTA_ROWS", "Engine", "FoldPolicy", "Read"]

_log = logging.getLogger("timak")

#: The capacity of a new key written by an engine that adopts capacities.
DEFAULT_CAPACITY = 1000
#: A partial fold's delta sibling holds at most this many records; a fold
#: that would pass it is a full one. Kept at most the size up to which the
#: join counts a value as small (``value.join``'s ``reuse_above``, 64): a
#: full fold then merges the delta onto the base keeping the base's chunks
#: (0.4 ms for a 1,000-item timeline), where a 96-record delta took the
#: general path, re-encoding everything (7-8 ms).
DELTA_ROWS = 64
#: Keys whose blind writes a process counts at most (least recently written
#: ones are forgotten first).
MAX_COUNTED_KEYS = 65536
# Decoded small siblings kept by their bytes. Fan-out writes the same bytes
# to every key, so the siblings a fold meets are mostly the same few dozen
# values: decoding each once per process halved the cost of a fold.
_SMALL_CACHE_BYTES = 2048
_SMALL_CACHE_MAX = 512
# Decoded large siblings, the most recently used few: a hot key's base is
# fetched again by every fold and read, and several writers' folds stored at
# once leave twin bases that every fold meets (8 writer processes on one
# SQLite key spent a third of their time decoding the same bases again).
# Values up to _LARGE_CACHE_ONE bytes, _LARGE_CACHE_BYTES in all.
_LARGE_CACHE_ONE = 1024 * 1024
_LARGE_CACHE_BYTES = 8 * 1024 * 1024
# Compressed chunks checked in full, shared by every engine of the process:
# a chunk is copied unchanged from value to value, so it is checked once.
_KNOWN = encoding.KnownChunks()


class FoldPolicy:
    """Says when a key that just took a blind write is due for a fold.

    A store that reports the sibling count after a write (memory, SQLite,
    Riak) says when: the one write that takes a key to ``fold_at``
    siblings folds it (counts rise one write at a time, so exactly one
    writer sees each number, however many write at once), and past ``2 *
    fold_at`` (that fold failed or is slow) so does every ``step``-th
    count, ``step`` being a quarter of ``fold_at``. A fold replaces every
    sibling its fetch saw, so the key holds fewer than ``fold_at``
    siblings plus those written while its latest fold was in flight, and
    fewer than ``2 * fold_at + step`` plus those while folds fail. (Every
    writer past ``2 * fold_at`` folding made eight writer processes on one
    SQLite key fold together once one fold was slow, each reading and
    rewriting the whole base: 358 writes/s, p90 102 ms.) A store
    that cannot (Cassandra) leaves each writing process to count its own
    blind writes per key since its last fold of that key (counting the
    folded sibling); one process alone keeps a key below ``fold_at``
    siblings, and W writing processes at most about W * ``fold_at``. The
    counts are bounded (least recently written keys are forgotten first),
    so a fan-out to millions of keys keeps this small; a forgotten key only
    folds a little later.
    """

    def __init__(self, fold_at: int, *, max_keys: int = MAX_COUNTED_KEYS) -> None:
        self.fold_at = fold_at
        #: Past ``2 * fold_at`` siblings, every ``step``-th count folds.
        self.step = max(1, fold_at // 4)
        self._max_keys = max_keys
        self._counts: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._lock = threading.Lock()

    def due(self, key: str, reported: int | None) -> bool:
        """Whether ``key`` should fold now, given the sibling count the store
        reported for the write (``None``: it cannot say, so count this
        process's writes; a due key starts again from the one sibling its
        fold leaves)."""
        if reported is not None:
            return reported == self.fold_at or (
                reported >= 2 * self.fold_at and reported % self.step == 0)
        with self._lock:
            seen = self._counts.pop(key, 0) + 1
            # A due key folds into one sibling, which this process then
            # counts: so one process alone keeps the key below fold_at.
            self._counts[key] = 1 if seen >= self.fold_at else seen
            if len(self._counts) > self._max_keys:
                self._counts.popitem(last=False)
        return seen >= self.fold_at

    def left(self, key: str, siblings: int) -> None:
        """A fold of ``key`` left ``siblings`` of this process's making (a
        partial fold's delta beside the base): count them toward the next."""
        with self._lock:
            self._counts[key] = siblings


@dataclass
class Read:
    """What one read of a key found.

    ``value`` is the join of the good siblings as the store would keep it
    (stating no capacity, and untrimmed, when no sibling states one);
    ``view`` is what a reader of ``view_capacity`` sees of it (the same
    object unless the key states no capacity). ``stated`` says whether the
    key's capacity is fixed (a sibling states it, or an old-format value
    holds more than the default)."""

    value: TimelineValue
    view: TimelineValue
    fetched: Fetched
    corrupt: list[CorruptValueError]
    #: The indices (in ``fetched.siblings``) of the siblings that decoded.
    good: list[int]
    stated: bool = False
    #: Whether this read stored the merge of several siblings (read repair).
    repaired: bool = False


@dataclass(frozen=True)
class _Fold:
    """A fold decided and encoded, not yet stored: ``data`` replaces the
    siblings ``context`` names under ``key``."""

    key: str
    data: bytes
    context: Any
    merged: int  # siblings it replaces
    partial: bool


class Engine:
    """Timeline values in ``bucket`` of ``connection``, read and written
    under the rules of the module docstring.

    ``capacity`` is the capacity this engine's writes state (``None``:
    adopt whatever a key states; a new key gets ``DEFAULT_CAPACITY``).
    ``written(keys, arrived)`` is told about every write (the change feed).
    Counters go to ``stats``. ``partial_folds=False`` folds fully even where
    the store could narrow (the change feed's small values gain nothing).
    """

    def __init__(
        self,
        connection: Backend,
        bucket: str,
        *,
        capacity: int | None,
        fold_at: int,
        stats: TimelineStats | None = None,
        written: Callable[[list[str], int], None] | None = None,
        max_counted_keys: int = MAX_COUNTED_KEYS,
        partial_folds: bool = True,
    ) -> None:
        self.connection = connection
        self.bucket = bucket
        self.capacity = capacity
        self.fold_at = fold_at
        self.stats = stats if stats is not None else TimelineStats()
        self._written = written
        self._policy = FoldPolicy(fold_at, max_keys=max_counted_keys)
        self._caps = capabilities(connection)
        self._partial = partial_folds and self._caps.narrow
        self._lock = threading.Lock()
        self._small: dict[bytes, TimelineValue] = {}
        self._large: collections.OrderedDict[bytes, TimelineValue] = collections.OrderedDict()
        self._large_bytes = 0

    @property
    def new_capacity(self) -> int:
        """The capacity a key this engine creates states."""
        return self.capacity or DEFAULT_CAPACITY

    # -- reading ------------------------------------------------------------

    def read(self, key: str, *, skip_corrupt: bool = False, repair: bool = True,
             check: bool = False, whole: bool = False) -> Read:
        """Fetch ``key`` and join its siblings; with ``repair``, store the
        join of several siblings in their place (read repair).

        Siblings are checked in full whenever the join may be stored
        (several siblings and ``repair``), when ``check`` (the caller will
        store), or with ``skip_corrupt``; otherwise a single sibling stays
        lazy. Where the store narrows and one sibling is a large base, the
        repair is partial (``_repair_beside_base``): only the small siblings
        are checked and replaced; ``whole=True`` (``fold``, sweeps) always
        joins every sibling into one. A corrupt sibling raises
        ``CorruptValueError`` (its ``partial`` holds the join of the rest)
        unless ``skip_corrupt``; either way nothing is stored that holds
        its bytes."""
        fetched = self.connection.fetch(self.bucket, key)
        if repair and not (check or skip_corrupt or whole) and self._partial \
                and len(fetched.siblings) > 1:
            beside = self._repair_beside_base(key, fetched)
            if beside is not None:
                return beside
        full = check or skip_corrupt or (repair and len(fetched.siblings) > 1)
        read = self._join(key, fetched, full=full)
        self.stats.add(reads=1)
        if read.corrupt and not skip_corrupt:
            error = read.corrupt[0]
            error.partial = read.view
            raise error
        if repair and len(fetched.siblings) > 1 and not read.corrupt:
            fold = _Fold(key, self.encode(read.value), fetched.context,
                         len(fetched.siblings), partial=False)
            read.repaired = self._store_fold(fold)
            if read.repaired:
                self.stats.add(repairs=1, siblings_merged=fold.merged)
        return read

    def _repair_beside_base(self, key: str, fetched: Fetched) -> Read | None:
        """Read repair where the store can narrow and one sibling is a large
        base: the small siblings are checked and joined into one delta that
        replaces just them (a partial fold), the base is neither checked nor
        rewritten, and the read shows the join of all, decoding only what it
        returns. Base and one small delta are left as they are. ``None``
        when this does not apply (then the full repair runs): no large
        base, a small sibling corrupt or in an old format, a delta too big.

        Rule 1 holds: what is stored is made only of the checked small
        siblings. (A full repair checked and rewrote the whole base: on
        SQLite the first read after writes took 2-3x a Redis read.)"""
        siblings = fetched.siblings
        sizes = [len(s) for s in siblings]
        base = sizes.index(max(sizes))
        try:
            values = [self.decode(s) for s in siblings]
            if len(values[base]) <= DELTA_ROWS:
                return None
            if len(siblings) == 2:
                small = encoding.validate(values[1 - base], _KNOWN)
                if small.legacy or len(small) > DELTA_ROWS:
                    return None
                fold = None
            else:
                fold = self._plan_partial(key, fetched)
                if fold is None:
                    return None
        except CorruptValueError:
            return None
        read = self._join(key, fetched, full=False, decoded=values)
        self.stats.add(reads=1)
        if fold is not None and self._store_fold(fold):
            read.repaired = True
            self.stats.add(repairs=1, partial_folds=1, siblings_merged=fold.merged)
        return read

    def _join(self, key: str, fetched: Fetched, *, full: bool,
              capacity: int | None = None,
              decoded: Sequence[TimelineValue] | None = None) -> Read:
        """Decode (and with ``full``, check) the siblings of one fetch and
        join the good ones; ``capacity``: a writer's, stated when no
        sibling states one (rule 3: only a writer's fold passes it);
        ``decoded``: the siblings decoded already, in order."""
        good: list[int] = []
        values: list[TimelineValue] = []
        corrupt: list[CorruptValueError] = []
        for i, sibling in enumerate(fetched.siblings):
            try:
                value = self.decode(sibling) if decoded is None else decoded[i]
                if full:
                    encoding.validate(value, _KNOWN)
            except CorruptValueError as exc:
                corrupt.append(CorruptValueError(f"key {key!r}, sibling {i}: {exc}", key=key))
                continue
            good.append(i)
            values.append(value)
        if corrupt:
            self.stats.add(corrupt=len(corrupt))
        stated_caps = [v.capacity for v in values if v.capacity is not None]
        view_capacity = min(stated_caps) if stated_caps else self.new_capacity
        stated = bool(stated_caps)
        if not stated and any(v.legacy for v in values):
            # Written by an older timak, which stored no capacity: keep all
            # it holds, and at least the configured capacity.
            held = len(merge(values))
            stated = held > view_capacity
            view_capacity = max(view_capacity, held)
            capacity = view_capacity
        value = merge(values, capacity)
        view = value if value.capacity is not None else value.trimmed(view_capacity)
        return Read(value, view, fetched, corrupt, good, stated)

    def joined(self, key: str, fetched: Fetched) -> TimelineValue:
        """The join of an earlier fetch's siblings (lazy; nothing stored);
        ``CorruptValueError`` if one is corrupt."""
        read = self._join(key, fetched, full=False)
        if read.corrupt:
            raise read.corrupt[0]
        return read.view

    def decode(self, sibling: bytes) -> TimelineValue:
        """One sibling, lazily decoded (cached by its bytes: small ones by
        the hundred, large ones a few recently used). A cached value is the
        same lazy decoding, so a damaged chunk raises on every use."""
        if len(sibling) > _SMALL_CACHE_BYTES:
            return self._decode_large(sibling)
        value = self._small.get(sibling)
        if value is None:
            value = encoding.decode(sibling, lazy=True)
            self.remember(sibling, value)
        return value

    def encode(self, value: TimelineValue) -> bytes:
        """``value``'s bytes, for the store. Their decoding is kept as if
        read (the encoder's own pieces, not parsed again), so the next read
        or fold here does not decode what this process wrote (a blind
        write's record is met again by every fold it takes part in). It
        counts as checked: by rule 1 everything stored here is made of
        checked siblings and checked new records; bytes that come back
        changed are other bytes, decoded and checked afresh."""
        data, twin = encoding.encode_twin(value)
        twin.checked = True
        if len(data) <= _SMALL_CACHE_BYTES:
            self.remember(data, twin)
        else:
            self._keep_large(data, twin)
        return data

    def _decode_large(self, sibling: bytes) -> TimelineValue:
        size = len(sibling)
        if size > _LARGE_CACHE_ONE:
            return encoding.decode(sibling, lazy=True)
        with self._lock:
            value = self._large.get(sibling)
            if value is not None:
                self._large.move_to_end(sibling)
                return value
        value = encoding.decode(sibling, lazy=True)
        self._keep_large(sibling, value)
        return value

    def _keep_large(self, data: bytes, value: TimelineValue) -> None:
        if len(data) > _LARGE_CACHE_ONE:
            return
        with self._lock:
            if data not in self._large:
                self._large[data] = value
                self._large_bytes += len(data)
                while self._large_bytes > _LARGE_CACHE_BYTES:
                    old, _ = self._large.popitem(last=False)
                    self._large_bytes -= len(old)

    def remember(self, data: bytes, value: TimelineValue) -> None:
        """Cache ``value`` as the decoding of ``data`` (small values only)."""
        if len(data) <= _SMALL_CACHE_BYTES:
            with self._lock:
                if len(self._small) >= _SMALL_CACHE_MAX:
                    del self._small[next(iter(self._small))]
                self._small[data] = value

    # -- writing ------------------------------------------------------------

    def write(self, key: str, records: Sequence[Record],
              check: Callable[[int], None] | None = None) -> TimelineValue:
        """Read ``key``, join ``records`` in, and store the result with the
        read's context: the store replaces exactly the siblings joined here,
        and any sibling written meanwhile survives beside it. Returns what
        was stored. ``check(capacity)`` may refuse the records (for size)
        before anything is written.

        Raises ``CorruptValueError`` (nothing written) if a sibling is
        corrupt, ``ConfigError`` if the key states another capacity than
        this engine's."""
        read = self.read(key, repair=False, check=True)
        capacity = read.view.capacity
        assert capacity is not None  # a view always states one
        if self.capacity is not None and read.stated and capacity != self.capacity:
            raise ConfigError(
                f"key {key!r} holds a timeline of capacity {capacity}, but this Timeline has "
                f"max_items={self.capacity}; writing would trim or resurrect items. Use "
                "max_items=None to adopt the stored capacity"
            )
        if check is not None:
            check(capacity)
        merged = merge([read.value], capacity, extra=records)
        self.connection.store(self.bucket, key, self.encode(merged), read.fetched.context)
        self.stats.add(writes=1, siblings_merged=max(0, len(read.fetched.siblings) - 1))
        if self._written is not None:
            self._written([key], max(r.arrived for r in records))
        return merged

    def blind(self, keys: list[str], data: bytes, arrived: int) -> int:
        """Blind-write ``data`` to every key of ``keys`` (no read), then fold
        the keys that are due. Returns how many keys were written."""
        return self.blind_many([(k, data) for k in keys], arrived)

    def blind_many(self, entries: list[tuple[str, bytes]], arrived: int) -> int:
        """Blind-write each ``(key, data)`` (no read), then fold the keys
        that are due (rule 5; errors while folding: rule 6)."""
        results = self.connection.store_many(self.bucket, entries)
        self.stats.add(blind_writes=len(entries))
        keys = [key for key, _ in entries]
        if self._written is not None:
            self._written(keys, arrived)
        fold_at, twice, step = self.fold_at, 2 * self.fold_at, self._policy.step
        due = self._policy.due
        # Fan-out's per-key hot loop: a reported count needs only compares
        # (FoldPolicy.due's rule, inline).
        to_fold = [
            key
            for key, count in zip(keys, results, strict=True)
            if ((count == fold_at or (count >= twice and count % step == 0))
                if count is not None else due(key, None))
        ]
        if to_fold:
            self._fold_many(to_fold, counted=bool(results) and results[0] is not None)
        return len(entries)

    # -- folding ------------------------------------------------------------

    def fold(self, key: str) -> int:
        """Merge the siblings under ``key`` into one, as a reader (rule 3);
        return how many were merged: 0 when there was nothing to merge, a
        sibling is corrupt (the key is left alone), or the store failed
        (logged; the siblings stay for the next read)."""
        try:
            read = self.read(key, whole=True)
        except CorruptValueError:
            return 0
        if not read.repaired:
            return 0
        self.stats.add(folds=1)
        return len(read.fetched.siblings)

    def sweep_one(self, key: str) -> tuple[bool, int]:
        """Fold one key for a sweep: (whether a sibling is corrupt, siblings
        merged if a fold was stored)."""
        try:
            read = self.read(key, whole=True)
        except CorruptValueError:
            return True, 0
        return False, len(read.fetched.siblings) if read.repaired else 0

    def _fold_many(self, keys: list[str], *, counted: bool) -> None:
        """Fold ``keys`` after a chunk of blind writes: one ``fetch_many``, a
        fold per key, then the stores: one ``swap_many`` call where the
        store can (memory, SQLite: one transaction), else one
        ``replace_many`` (Cassandra: concurrent requests), else one
        ``store`` each."""
        try:
            fetched_all = self.connection.fetch_many(self.bucket, keys)
        except BackendError as exc:
            self.stats.add(fold_errors=1)
            _log.warning("folding %d keys failed: %s", len(keys), exc)
            return
        folds = []
        for key, fetched in zip(keys, fetched_all, strict=True):
            try:
                fold = self._plan_fold(key, fetched)
            except CorruptValueError as exc:  # pragma: no cover - planned folds check first
                self.stats.add(fold_errors=1)
                _log.warning("folding %r skipped: %s", key, exc)
                continue
            if fold is not None:
                folds.append(fold)
        if folds and (self._caps.swap_many or self._caps.replace_many):
            entries = [(f.key, f.data, f.context) for f in folds]
            try:
                if self._caps.swap_many:
                    done = self.connection.swap_many(self.bucket, entries)  # type: ignore[attr-defined]
                else:
                    self.connection.replace_many(self.bucket, entries)  # type: ignore[attr-defined]
                    done = [True] * len(folds)
            except BackendError as exc:
                self.stats.add(fold_errors=1)
                _log.warning("storing %d folds failed: %s", len(folds), exc)
                return
            stored = [fold for fold, ok in zip(folds, done, strict=True) if ok]
        else:
            stored = [fold for fold in folds if self._store_fold(fold)]
        for fold in stored:
            self._count_fold(fold)
            if fold.partial and not counted:
                # The delta is one sibling beside the base: count it as one
                # of this process's writes, so the key still holds at most
                # about fold_at siblings per writing process.
                self._policy.left(fold.key, 1)

    def fold_fetched(self, key: str, fetched: Fetched, *, partial: bool | None = None) -> bool:
        """Fold the siblings of one (possibly stale) fetch as a writer and
        store the fold; whether one was stored. ``partial``: whether a
        partial fold may be tried (default: where the store can narrow).
        See ``_plan_fold``."""
        fold = self._plan_fold(key, fetched, partial=partial)
        if fold is None or not self._store_fold(fold):
            return False
        self._count_fold(fold)
        return True

    def _plan_fold(self, key: str, fetched: Fetched, *, partial: bool | None = None
                   ) -> _Fold | None:
        """The fold of one fetch's siblings, or ``None`` when there is
        nothing to fold.

        Where the store can narrow a context, every sibling but the largest
        is merged into one *delta* sibling that replaces just them, and the
        largest (the full base) is neither read nor rewritten. A *full*
        fold (all siblings into one) is done instead when the delta would
        hold more than ``DELTA_ROWS`` records, when a small sibling is in
        an old format or corrupt, or when the store cannot narrow. A
        corrupt sibling is left where it is (rule 2)."""
        if len(fetched.siblings) < 2:
            return None
        if partial is None:
            partial = self._partial
        if partial and self._caps.narrow and len(fetched.siblings) > 2:
            planned = self._plan_partial(key, fetched)
            if planned is not None:
                return planned
        return self._plan_full(key, fetched)

    def _plan_full(self, key: str, fetched: Fetched) -> _Fold | None:
        read = self._join(key, fetched, full=True, capacity=self.new_capacity)
        if read.corrupt:
            self.stats.add(fold_errors=1)
            _log.warning("key %r has %d corrupt sibling(s); folding only the others",
                         key, len(read.corrupt))
            if not self._caps.narrow or len(read.good) < 2:
                return None
            context = self.connection.narrow(fetched.context, read.good)  # type: ignore[attr-defined]
            return _Fold(key, self.encode(read.value), context, len(read.good), False)
        # Passing the writer's capacity to the join states it when the key
        # states none (rule 3: this fold is part of the writer's write).
        return _Fold(key, self.encode(read.value), fetched.context,
                     len(fetched.siblings), False)

    def _plan_partial(self, key: str, fetched: Fetched) -> _Fold | None:
        """The partial fold of ``_plan_fold``, or ``None`` when a full one
        is due instead (the full fold also leaves a corrupt small sibling
        alone, rule 2).

        The delta is the join of the siblings it replaces, trimmed only at a
        capacity one of them states (the key's one capacity, since
        capacities only ever shrink in a join); when none states one it
        states none and is not trimmed (it holds at most ``DELTA_ROWS``
        records). Any subset of siblings joined at the key's capacity joins
        with the rest to the same value, so reads see exactly what a full
        fold would give."""
        siblings = fetched.siblings
        sizes = [len(s) for s in siblings]
        base = sizes.index(max(sizes))
        small = [i for i in range(len(siblings)) if i != base]
        try:
            values = [self.decode(siblings[i]) for i in small]
            # A second large sibling (two writers' full folds, stored at
            # once) makes a delta too big: say so before checking or
            # joining it (a join of two bases here took 160 ms under load,
            # to be thrown away for the full fold).
            if any(len(v) > DELTA_ROWS for v in values):
                return None
            for value in values:
                encoding.validate(value, _KNOWN)
        except CorruptValueError:
            return None
        if any(v.legacy for v in values):
            return None  # an old format's capacity rule needs every sibling
        # The previous delta (the largest of them) keeps its encoded rows:
        # the new records are usually all newer, so only they are encoded.
        sizes = sorted(map(len, values))
        delta = join(values, reuse_above=sizes[-2])
        if len(delta) > DELTA_ROWS:
            return None
        context = self.connection.narrow(fetched.context, small)  # type: ignore[attr-defined]
        return _Fold(key, self.encode(delta), context, len(small), True)

    def _store_fold(self, fold: _Fold) -> bool:
        """Store one fold (a read repair is a full fold too); a failure is
        logged and gives ``False``: the siblings it would replace stay. Where
        the store can swap, a fold whose siblings are no longer all there
        (another fold or repair took some, and holds what they held) stores
        nothing and gives ``False`` too."""
        try:
            if self._caps.swap_many:
                # Another fold or repair that replaced some of these siblings
                # first holds them all already: storing this one too would
                # leave two full merges side by side.
                return bool(self.connection.swap_many(  # type: ignore[attr-defined]
                    self.bucket, [(fold.key, fold.data, fold.context)])[0])
            self.connection.store(self.bucket, fold.key, fold.data, fold.context)
        except BackendError as exc:
            kind = "partial fold" if fold.partial else "read repair"
            self.stats.add(fold_errors=1)
            _log.warning("%s of %r failed: %s", kind, fold.key, exc)
            return False
        return True

    def _count_fold(self, fold: _Fold) -> None:
        if fold.partial:
            self.stats.add(folds=1, partial_folds=1, siblings_merged=fold.merged)
        else:
            self.stats.add(folds=1, repairs=1, siblings_merged=fold.merged)

