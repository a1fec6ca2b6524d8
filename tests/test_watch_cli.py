"""``timak watch`` in its own process, following writes made by other processes.

No test depends on timing: each waits for the watcher's ``ready`` line
(its start cursors are taken, so every later write is printed) before it
writes, and for the lines it expects after; ``WAIT`` only bounds a wait.
Ctrl-C ends the watcher within ``timak.cli._interrupt.GRACE`` whatever it
is doing (issue 22: five of these outlived SIGINT by 30 s)."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from timak import Timeline
from timak.backends import connect
from timak.cli._watch import READY, format_change
from timak.feed import Feed
from timak.timelines import Change

WAIT = 30.0  # seconds: an upper bound on waiting, never an expectation of speed


class Watcher:
    """A ``timak watch`` subprocess whose stdout and stderr lines are collected."""

    def __init__(self, url: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "timak", "--url", url, "watch", "--interval", "0.05", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self._queue.put),
                             daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.errors.append),
                             daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], put: Callable[[str], None]) -> None:
        for line in stream:
            put(line.rstrip("\n"))

    def wait_for(self, done: Callable[[list[str]], bool]) -> list[str]:
        """Collect lines until ``done(lines)``; fail after ``WAIT`` seconds."""
        deadline = time.monotonic() + WAIT
        while not done(self.lines):
            assert time.monotonic() < deadline, (
                f"gave up waiting; got {self.lines!r}, {self.errors!r}")
            assert self.proc.poll() is None, self.stop()
            with contextlib.suppress(queue.Empty):
                self.lines.append(self._queue.get(timeout=0.1))
        return self.lines

    def wait_for_error(self, text: str) -> None:
        """Wait until a stderr line contains ``text``; fail after ``WAIT`` seconds."""
        deadline = time.monotonic() + WAIT
        while not any(text in line for line in self.errors):
            assert time.monotonic() < deadline, f"no {text!r} in {self.errors!r}"
            time.sleep(0.05)

    def wait_ready(self) -> None:
        """Wait until the watcher has taken its start cursors."""
        self.wait_for_error(READY)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(WAIT)
        self._close()
        return code

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(WAIT)
        self._close()
        return f"exit {self.proc.returncode}, stderr: {self.errors}"

    def _close(self) -> None:
        for reader in self._readers:  # they end at EOF, once the process is gone
            reader.join(WAIT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


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


@pytest.mark.slow
def test_watch_keys_follows_another_writer_process(url: str, watchers: list[Watcher]) -> None:
    watcher = Watcher(url, "news")
    watchers.append(watcher)
    watcher.wait_ready()
    _cli(url, "add", "news", "a", "2024-05-01T12:00:00Z", "--data", '{"text": "hi"}')
    _cli(url, "delete", "news", "a", "2024-05-01T12:00:00Z")
    _cli(url, "add", "other", "x", "5")  # another key: not watched
    _cli(url, "add", "news", "b", "7.5")
    watcher.wait_for(lambda lines: any("\tb\t" in line for line in lines))
    assert _fields(watcher.lines) == [
        ("news", "add", "a", "2024-05-01T12:00:00.000000Z", '{"text": "hi"}'),
        ("news", "delete", "a", "2024-05-01T12:00:00.000000Z", "-"),
        ("news", "add", "b", "7.5", "-"),
    ]
    assert watcher.interrupt() == 130


@pytest.mark.slow
def test_watch_all_keys_through_the_feed(url: str, watchers: list[Watcher]) -> None:
    backend = connect(url)
    try:
        writer = Timeline(backend, feed=Feed(backend))
        watcher = Watcher(url, "--json")
        watchers.append(watcher)
        watcher.wait_ready()
        writer.fanout(["home:1", "home:2"], "post", 10, {"by": "carol"})
        writer.add("profile:carol", "bio", 11)

        def written(lines: list[str]) -> list[tuple[str, str, str, object]]:
            records = [json.loads(line) for line in lines]
            return sorted((r["key"], r["op"], r["id"], r["data"]) for r in records)

        seen = written(watcher.wait_for(lambda lines: len(lines) >= 3))
        assert seen == [
            ("home:1", "add", "post", {"by": "carol"}),
            ("home:2", "add", "post", {"by": "carol"}),
            ("profile:carol", "add", "bio", None),
        ]
        assert watcher.interrupt() == 130
    finally:
        backend.close()


@pytest.mark.slow
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


@pytest.mark.slow
def test_watch_keys_prints_only_what_arrives_after_it_started(
    url: str, watchers: list[Watcher]
) -> None:
    _cli(url, "add", "news", "before", "5")  # well inside the 5 s skew window
    watcher = Watcher(url, "news")
    watchers.append(watcher)
    watcher.wait_ready()
    _cli(url, "add", "news", "after", "6")
    watcher.wait_for(lambda lines: len(lines) > 0)
    assert _fields(watcher.lines) == [("news", "add", "after", "6", "-")]
    assert "from now on" in watcher.errors[0]
    assert watcher.interrupt() == 130


@pytest.mark.slow
def test_watch_feed_starts_from_now_and_sees_cli_writes(
    url: str, watchers: list[Watcher]
) -> None:
    _cli(url, "add", "earlier", "before", "5")
    watcher = Watcher(url)
    watchers.append(watcher)
    watcher.wait_ready()
    # `timak add` notes the feed: the watcher sees it without KEYs.
    _cli(url, "add", "quiet", "q", "1", "--no-feed")
    _cli(url, "add", "loud", "l", "1")
    watcher.wait_for(lambda lines: any("\tloud\t" in line for line in lines))
    keys = {line.split("\t")[1] for line in watcher.lines}
    assert keys == {"loud"}
    assert "change feed" in watcher.errors[0] and "feed=Feed(...)" in " ".join(watcher.errors)


def _locked(path: Path) -> sqlite3.Connection:
    """A connection holding ``path``'s database so that nothing else reads
    or writes it until it is closed: an outage, as the store sees it."""
    Timeline(f"sqlite:///{path}").close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    return holder


@pytest.mark.slow
def test_watch_retries_until_the_store_answers(
    tmp_path: Path, watchers: list[Watcher]
) -> None:
    holder = _locked(tmp_path / "watched.db")
    url = f"sqlite:///{tmp_path}/watched.db?timeout=0.05"
    try:
        watcher = Watcher(url, "news")
        watchers.append(watcher)
        watcher.wait_for_error("retrying in 1 s")  # backing off: 0.5 s, then 1 s
        assert watcher.proc.poll() is None
        assert any("store error (BackendTimeoutError" in line for line in watcher.errors)
    finally:
        holder.close()
    watcher.wait_for_error("the store answers again")
    watcher.wait_ready()
    _cli(url, "add", "news", "after", "1")
    watcher.wait_for(lambda lines: len(lines) > 0)
    assert watcher.interrupt() == 130


@pytest.mark.slow
def test_watch_retries_when_the_store_fails_mid_watch(watchers: list[Watcher]) -> None:
    riak_double = pytest.importorskip("riak_double")
    pytest.importorskip("urllib3")
    with riak_double.RiakTestDouble() as riak:
        url = riak.url(retries=0)
        tl = Timeline(url)
        try:
            watcher = Watcher(url, "news")
            watchers.append(watcher)
            watcher.wait_ready()
            riak.fail_next(503, "down for maintenance\n", times=3, methods=["GET"])
            watcher.wait_for_error("the store answers again")
            # Each failed poll is reported, then retried; none ends the watch.
            assert 1 <= sum("store error" in line for line in watcher.errors) <= 3
            assert watcher.proc.poll() is None
            tl.add("news", "after", 2)
            watcher.wait_for(lambda lines: any("\tafter\t" in line for line in lines))
            assert watcher.interrupt() == 130
        finally:
            tl.close()


def test_exit_on_error_exits_3_at_the_first_store_error(tmp_path: Path) -> None:
    holder = _locked(tmp_path / "w.db")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "timak", "watch", "news", "--exit-on-error",
             "--url", f"sqlite:///{tmp_path}/w.db?timeout=0.05"],
            capture_output=True, text=True, timeout=WAIT,
        )
    finally:
        holder.close()
    assert result.returncode == 3
    assert "store timed out" in result.stderr


def test_watch_refuses_a_private_memory_store() -> None:
    result = subprocess.run([sys.executable, "-m", "timak", "--url", "memory://", "watch"],
                            capture_output=True, text=True, timeout=WAIT)
    assert result.returncode == 2
    assert "memory://" in result.stderr
