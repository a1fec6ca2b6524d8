"""The ``/demo`` page in a real headless browser (Debian's chromium and
chromedriver, through selenium): an activity posted through the API shows
on the page's notification bell and home feed, pushed by Server-Sent
Events. Skips, saying why, without a browser; ``TIMAK_REQUIRE_BROWSER=1``
(CI) turns that skip into a failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from browsers import browser  # noqa: F401 (a fixture)
from servers import READ_TOKEN, WRITE_TOKEN, Served, token_file

pytestmark = pytest.mark.slow

def wait_until(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_bell_counts_an_activity_posted_through_the_api(
    browser: Any, tmp_path: Path,  # noqa: F811 (the fixture)
) -> None:
    import httpx
    from selenium.webdriver.common.by import By

    with Served(f"sqlite:///{tmp_path / 'timak.db'}", "--poll-interval", "0.2",
                tokens=token_file(tmp_path)) as served, \
            httpx.Client(base_url=served.url, timeout=10,
                         headers={"Authorization": f"Bearer {WRITE_TOKEN}"}) as api:
        api.post("/feeds/follow", json={"follower": "alice", "target": "bob"})
        browser.get(f"{served.url}/demo#reader=alice&token={READ_TOKEN}")

        def text(element: str) -> str:
            return str(browser.find_element(By.ID, element).text)

        wait_until(lambda: text("status") == "live", "the page to subscribe")
        assert text("bell-count") == "0"
        api.post("/feeds/activities", json={
            "activity": {"actor": "bob", "verb": "like", "object": "photo:1", "time": 10},
            "to": [["notification", "alice"]],
        })
        wait_until(lambda: text("bell-count") == "1", "the bell to count 1")
        api.post("/feeds/activities", json={
            "activity": {"actor": "bob", "verb": "post", "object": "photo:2", "time": 20,
                         "extra": {"text": "sunset"}},
        })
        wait_until(lambda: "bob post photo:2: sunset" in text("home"), "the post on the page")
        assert text("home").splitlines() == ["bob post photo:2: sunset", "bob like photo:1"]
        # The page's token only reads: the browser marking seen is refused.
        browser.find_element(By.ID, "mark-seen").click()
        time.sleep(0.5)
        assert text("bell-count") == "1"
    assert READ_TOKEN not in served.log and WRITE_TOKEN not in served.log
