"""Third-party stores reach ``connect()`` through the ``timak.backends``
entry-point group, as an installed package would declare them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from timak import ConfigError, Timeline, connect
from timak.backends.base import Backend, Capabilities, Fetched, StoreResult, capabilities
from timak.backends.memory import MemoryBackend

PLUGIN = '''
from timak.backends.memory import MemoryBackend

class PlugBackend(MemoryBackend):
    """A store from another package: the memory store under another name."""

def from_url(parts):
    return PlugBackend(name="plug:" + parts.netloc)
'''


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package on sys.path with real dist-info metadata, the way pip leaves one."""
    (tmp_path / "timak_plug.py").write_text(PLUGIN)
    info = tmp_path / "timak_plug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: timak-plug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[timak.backends]\nplug = timak_plug\nsqlite = timak_plug\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_plugin_scheme_connects_and_serves_a_timeline(installed_plugin: Path) -> None:
    backend = connect("plug://one")
    assert type(backend).__name__ == "PlugBackend"
    assert isinstance(backend, MemoryBackend)
    with Timeline(backend, max_items=3) as tl:
        tl.add("k", "a", 1)
        assert tl.get("k") == ["a"]


def test_a_plugin_cannot_take_over_a_built_in_scheme(
    installed_plugin: Path, tmp_path: Path
) -> None:
    backend = connect(f"sqlite:///{tmp_path}/t.db")
    try:
        assert type(backend).__module__ == "timak.backends.sqlite"
    finally:
        backend.close()


def test_unknown_schemes_list_the_plugins_too(installed_plugin: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown store 'nope'.*plug://"):
        connect("nope://x")


def test_without_the_plugin_its_scheme_is_unknown() -> None:
    with pytest.raises(ConfigError, match="unknown store 'plug'"):
        connect("plug://one")


class _Middleware(Backend):
    """User middleware: the four required calls written out, everything
    else delegated with ``__getattr__`` (as a logging or metrics wrapper is)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def fetch(self, bucket: str, key: str) -> Fetched:
        return self.inner.fetch(bucket, key)

    def store(self, bucket: str, key: str, value: bytes, context: Any = None) -> StoreResult:
        return self.inner.store(bucket, key, value, context)

    def delete(self, bucket: str, key: str, context: Any = None) -> None:
        self.inner.delete(bucket, key, context)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_delegating_wrapper_keeps_the_stores_capabilities() -> None:
    """Capabilities are looked up with getattr in one place, so a wrapper
    keeps them on every Python version (isinstance on a runtime Protocol
    stopped seeing __getattr__ attributes in 3.12)."""
    wrapped = _Middleware(MemoryBackend())
    assert capabilities(wrapped) == Capabilities(keys=True, narrow=True, replace_many=True,
                                                 buckets=True, swap_many=True)
    tl = Timeline(wrapped, max_items=100, fold_at=4)
    for i in range(12):
        tl.fanout(["k"], i, i)
    assert tl.stats.partial_folds > 0
    assert tl.get("k") == list(range(11, -1, -1))
    assert tl.compact().keys == 1  # keys() is reached through the wrapper too


def test_declared_capabilities_win_over_methods() -> None:
    class Cautious(_Middleware):
        capabilities = Capabilities(keys=True)

    tl = Timeline(Cautious(MemoryBackend()), max_items=100, fold_at=4)
    for i in range(12):
        tl.fanout(["k"], i, i)
    assert tl.stats.partial_folds == 0 and tl.stats.folds > 0
    assert tl.get("k") == list(range(11, -1, -1))
