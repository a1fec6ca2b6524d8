"""One URL-options parser for every store: riak:// and cassandra:// refuse the
same mistakes with the same ConfigError messages, and read values alike."""

from __future__ import annotations

import importlib.util

import pytest

from timak.backends import connect
from timak.errors import ConfigError

STORES = [
    pytest.param("riak://127.0.0.1:8098/?check_props=0&", "urllib3", id="riak"),
    pytest.param("cassandra://127.0.0.1:1/ks?", "cassandra", id="cassandra"),
]


def _need(driver: str) -> None:
    if importlib.util.find_spec(driver) is None:
        pytest.skip(f"needs {driver}")


@pytest.mark.parametrize(("base", "driver"), STORES)
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("timeout=5&timeout=6", r"URL option timeout given twice"),
        ("nope=1", r"unknown \w+ URL option 'nope'; known: .*timeout"),
        ("tls=maybe", r"URL option tls must be 1 or 0 \(true or false\), got 'maybe'"),
        ("timeout=soon", r"URL option timeout must be a number, got 'soon'"),
        ("timeout=-1", r"URL option timeout must be (positive|in \(0, 86400\)), got '-1'"),
        ("timeout", r"malformed \w+ URL query '.*timeout': expected name=value"),
    ],
)
def test_both_stores_refuse_the_same_mistakes_alike(
    base: str, driver: str, query: str, message: str
) -> None:
    _need(driver)
    with pytest.raises(ConfigError, match=message):
        connect(base + query)


def test_one_flag_vocabulary() -> None:
    from timak.backends._query import flag

    for text in ("1", "true", "YES", "on"):
        assert flag("x", "f", text) is True
    for text in ("0", "False", "no", "OFF"):
        assert flag("x", "f", text) is False


def test_whole_numbers_and_sizes() -> None:
    from timak.backends._query import parse_size, whole

    assert whole("x", "n", "7") == 7
    with pytest.raises(ConfigError, match="x URL option n must be at least 1, got 0"):
        whole("x", "n", "0")
    with pytest.raises(ConfigError, match="must be a whole number"):
        whole("x", "n", "1.5")
    assert parse_size("2 MiB") == 2 * 1024 * 1024
    with pytest.raises(ConfigError, match="byte count"):
        parse_size("lots")
