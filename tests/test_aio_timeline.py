"""The Timeline scenarios of ``test_timeline.py`` (memory, SQLite and, for
those that run on every store, the Riak double), run through
``timak.aio``: every ``Timeline(...)`` that module makes is a
``timak.aio.Timeline`` behind ``Blocking``, so each scenario's calls are
coroutines run in the aio Timeline's worker threads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import test_timeline
from aio_blocking import Blocking, LoopThread
from test_timeline import *  # noqa: F403  (collects its tests here again)

from timak import aio

# Not again here: thousands of blind writes each, checking the sync engine's
# folds, not the async layer (14 s through the adapter, nothing new).
for _name in ("test_unread_blind_writes_stay_bounded",
              "test_unread_blind_writes_stay_bounded_without_narrowing"):
    del globals()[_name]
# The sync Visible is built lazily; timak.aio returns a list built in its
# worker thread (so the loop never decodes): checked below instead.
del globals()["test_the_returned_timeline_is_a_sequence_built_as_far_as_it_is_used"]


def test_aio_add_returns_a_list_built_in_the_worker_thread() -> None:
    tl = test_timeline.Timeline("memory://", max_items=2)
    assert tl.add("k", 1, 1) == [1]
    result = tl.add("k", 2, 2, obj_data="two")
    assert type(result) is list and result == ["two", 1]
    assert type(tl.delete("k", 1, 1)) is list


@pytest.fixture(autouse=True)
def through_aio(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    loop = LoopThread()
    made: list[aio.Timeline] = []

    def timeline(*args: Any, **kwargs: Any) -> Any:
        made.append(aio.Timeline(*args, **kwargs))
        return Blocking(made[-1], loop)

    monkeypatch.setattr(test_timeline, "Timeline", timeline)
    yield
    for made_timeline in made:
        loop.run(made_timeline.close())
    loop.close()


def test_the_scenarios_make_aio_timelines() -> None:
    made = test_timeline.Timeline("memory://")
    assert isinstance(object.__getattribute__(made, "_target"), aio.Timeline)
