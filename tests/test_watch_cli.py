"""``timak watch`` in its own process, following writes made by other processes."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from timak import Timeline
from timak.backends import connect
from timak.cli.watch import format_change
from timak.feed import Feed
from timak.timelines import Change

WAIT = 30.0  # seconds: an upper bound on waiting, never an expectation of speed


class Watcher:
    """A ``timak watch`` subprocess whose stdout lines arrive on a queue."""

    def __init__(self, url: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "timak", "--url", url, "watch", "--interval", "0.05", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_for(self, done: Callable[[list[str]], bool], poke: Callable[[], None] | None = None
                 ) -> list[str]:
        """Collect lines until ``done(lines)``; call ``poke`` every half second
        meanwhile. Fails after ``WAIT`` seconds."""
        deadline = time.monotonic() + WAIT
        next_poke = 0.0
        while not done(self.lines):
            now = time.monotonic()
            assert now < deadline, f"gave up waiting; got {self.lines!r}"
            assert self.proc.poll() is None, self.stop()
            if poke is not None and now >= next_poke:
                poke()
                next_poke = now + 0.5
            with contextlib.suppress(queue.Empty):
                self.lines.append(self._queue.get(timeout=0.1))
        return self.lines

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(WAIT)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        _, err = self.proc.communicate(timeout=WAIT)
        return f"exit {self.proc.returncode}, stderr: {err}"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/watched.db"


@pytest.fixture
def watchers() -> Iterator[list[Watcher]]:
    started: list[Watcher] = []
    yield started
    for watcher in started:
        watcher.stop()


def _cli(url: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "timak", "--url", url, *args],
                   check=True, capture_output=True, timeout=WAIT)


def _fields(lines: list[str]) -> list[tuple[str, ...]]:
    return [tuple(line.split("\t")[1:]) for line in lines]


def test_watch_keys_follows_another_writer_process(url: str, watchers: list[Watcher]) -> None:
    watcher = Watcher(url, "news")
    watchers.append(watcher)
    pings = iter(range(10_000))
    # Until the watcher prints, keep writing: then it is surely polling.
    watcher.wait_for(lambda lines: len(lines) > 0,
                     poke=lambda: _cli(url, "add", "news", f"ping{next(pings)}", "1"))
    ready = len(watcher.lines)
    _cli(url, "add", "news", "a", "2024-05-01T12:00:00Z", "--data", '{"text": "hi"}')
    _cli(url, "delete", "news", "a", "2024-05-01T12:00:00Z")
    _cli(url, "add", "other", "x", "5")  # another key: not watched
    _cli(url, "add", "news", "b", "7.5")
    watcher.wait_for(lambda lines: any("\tb\t" in line for line in lines[ready:]))
    changes = [f for f in _fields(watcher.lines[ready:]) if not f[2].startswith("ping")]
    assert changes == [
        ("news", "add", "a", "2024-05-01T12:00:00.000000Z", '{"text": "hi"}'),
        ("news", "delete", "a", "2024-05-01T12:00:00.000000Z", "-"),
        ("news", "add", "b", "7.5", "-"),
    ]
    assert watcher.interrupt() == 130


def test_watch_all_keys_through_the_feed(url: str, watchers: list[Watcher]) -> None:
    backend = connect(url)
    try:
        writer = Timeline(backend, feed=Feed(backend))
        watcher = Watcher(url, "--json")
        watchers.append(watcher)
        pings = iter(range(10_000))
        watcher.wait_for(lambda lines: len(lines) > 0,
                         poke=lambda: writer.add("pings", next(pings), 1))
        ready = len(watcher.lines)
        writer.fanout(["home:1", "home:2"], "post", 10, {"by": "carol"})
        writer.add("profile:carol", "bio", 11)

        def written(lines: list[str]) -> list[tuple[str, str, str, object]]:
            records = [json.loads(line) for line in lines[ready:]]
            return sorted((r["key"], r["op"], r["id"], r["data"]) for r in records
                          if r["key"] != "pings")

        seen = written(watcher.wait_for(lambda lines: len(written(lines)) >= 3))
        assert seen == [
            ("home:1", "add", "post", {"by": "carol"}),
            ("home:2", "add", "post", {"by": "carol"}),
            ("profile:carol", "add", "bio", None),
        ]
        assert watcher.interrupt() == 130
    finally:
        backend.close()


def test_from_start_prints_the_history_first(url: str, watchers: list[Watcher]) -> None:
    _cli(url, "add", "news", "old", "1")
    watcher = Watcher(url, "news", "--from-start")
    watchers.append(watcher)
    watcher.wait_for(lambda lines: len(lines) >= 1)
    assert _fields(watcher.lines)[0] == ("news", "add", "old", "1", "-")
    assert watcher.interrupt() == 130


def test_format_change_quotes_control_characters() -> None:
    change = Change("tab\there", 1, 1_714_564_800_000_000, False, None, 1_714_564_800_000_000)
    line = format_change(change)
    assert line.split("\t") == [
        "2024-05-01T12:00:00.000000Z", '"tab\\there"', "add", "1",
        "2024-05-01T12:00:00.000000Z", "-",
    ]
    as_json = json.loads(format_change(change, as_json=True))
    assert as_json["key"] == "tab\there" and as_json["datetime"] == "2024-05-01T12:00:00.000000Z"
