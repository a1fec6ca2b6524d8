"""The Django adapter with real Django and its SQLite database.

No pytest-django: settings are configured here, tables made by ``migrate
--run-syncdb``, and every test commits for real (``on_commit`` callbacks
only run on a real commit), then cleans its rows up.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

django = pytest.importorskip("django")
from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=["timak.contrib.django", "django_app"],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        TIMAK={"URL": "memory://django-settings", "MAX_ITEMS": 50},
    )
    django.setup()

from django.core.management import call_command  # noqa: E402
from django.core.management.base import CommandError  # noqa: E402
from django.db import transaction  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from django_app.models import Follow, Person, Post  # noqa: E402

from timak import Timeline  # noqa: E402
from timak._scores import from_datetime  # noqa: E402
from timak.activity import Activity, Feeds  # noqa: E402
from timak.backends.memory import MemoryBackend  # noqa: E402
from timak.contrib.django import (  # noqa: E402
    failed_writes,
    register,
    registrations,
    settings_timeline,
    unregister,
    wait_for_background_writes,
)
from timak.contrib.django.activity import (  # noqa: E402
    activity_rows,
    connect_follow_model,
    connect_follows,
    register_activities,
    timeline_rows,
)
from timak.errors import (  # noqa: E402
    ConfigError,
    InvalidActivityError,
    InvalidDataError,
    UnavailableError,
    ValueTooLargeError,
)

WHEN = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)


class Boom(Exception):
    pass


DISCONNECT: list[Callable[[], None]] = []


@pytest.fixture(scope="module", autouse=True)
def tables() -> None:
    call_command("migrate", run_syncdb=True, verbosity=0)


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    yield
    unregister()
    for disconnect in DISCONNECT:
        disconnect()
    DISCONNECT.clear()
    Follow.objects.all().delete()
    Post.objects.all().delete()
    Person.objects.all().delete()


@pytest.fixture
def tl() -> Timeline:
    return Timeline(MemoryBackend(), max_items=100)


def own_timeline(post: Post) -> list[str]:
    return [f"user:{post.author_id}:posts"]


def home_timelines(post: Post) -> list[str]:
    followers = Person.objects.filter(follows=post.author_id).values_list("pk", flat=True)
    return [f"user:{pk}:home" for pk in followers]


def test_save_adds_after_commit_and_delete_deletes(tl: Timeline) -> None:
    register(Post, keys=own_timeline, score="created_at", data=lambda p: {"text": p.text},
             timeline=tl)
    alice = Person.objects.create(name="alice")
    key = f"user:{alice.pk}:posts"
    with transaction.atomic():
        post = Post.objects.create(author=alice, text="hello", created_at=WHEN)
        assert tl.get(key) == []  # not committed yet
    assert tl.get(key) == [{"text": "hello"}]
    (record,) = tl.get(key, raw=True)
    assert (record.id, record.score) == (post.pk, from_datetime(WHEN))
    post.delete()  # autocommit: the delete runs at once
    assert tl.get(key) == []
    assert tl.get(key, raw=True)[0].deleted


def test_rolled_back_transaction_writes_nothing(tl: Timeline) -> None:
    register(Post, keys=own_timeline, score="created_at", timeline=tl)
    alice = Person.objects.create(name="alice")
    key = f"user:{alice.pk}:posts"
    with pytest.raises(Boom), transaction.atomic():
        Post.objects.create(author=alice, text="never", created_at=WHEN)
        raise Boom
    with transaction.atomic():
        kept = Post.objects.create(author=alice, text="kept", created_at=WHEN)
        with pytest.raises(Boom), transaction.atomic():  # a savepoint rolled back
            Post.objects.create(author=alice, text="undone", created_at=WHEN)
            raise Boom
    assert tl.get(key) == [kept.pk]
    assert list(Post.objects.values_list("text", flat=True)) == ["kept"]


def test_deleting_in_a_rolled_back_transaction_keeps_the_item(tl: Timeline) -> None:
    register(Post, keys=own_timeline, score="created_at", timeline=tl)
    post = Post.objects.create(author=Person.objects.create(name="a"), text="x", created_at=WHEN)
    key, pk = own_timeline(post)[0], post.pk
    with pytest.raises(Boom), transaction.atomic():
        post.delete()
        raise Boom
    assert tl.get(key) == [pk]


def test_fanout_to_followers(tl: Timeline) -> None:
    register(Post, keys=own_timeline, score="created_at", timeline=tl)
    register(Post, keys=home_timelines, score="created_at", timeline=tl, blind=True)
    alice, bob, carol, dave = (Person.objects.create(name=n) for n in ("a", "b", "c", "d"))
    bob.follows.add(alice)
    carol.follows.add(alice)
    dave.follows.add(bob)
    post = Post.objects.create(author=alice, text="hi", created_at=WHEN)
    assert tl.get(f"user:{alice.pk}:posts") == [post.pk]
    assert tl.get(f"user:{bob.pk}:home") == [post.pk]
    assert tl.get(f"user:{carol.pk}:home") == [post.pk]
    assert tl.get(f"user:{dave.pk}:home") == []
    assert tl.stats.blind_writes == 2
    post.delete()
    assert tl.get(f"user:{bob.pk}:home") == []
    assert tl.get(f"user:{carol.pk}:home") == []
    assert tl.get(f"user:{alice.pk}:posts") == []


def test_updates_move_the_item_unless_turned_off(tl: Timeline) -> None:
    register(Post, keys=own_timeline, score="created_at", timeline=tl)
    alice = Person.objects.create(name="alice")
    first = Post.objects.create(author=alice, text="1", created_at=WHEN)
    second = Post.objects.create(author=alice, text="2", created_at=WHEN + timedelta(hours=1))
    key = f"user:{alice.pk}:posts"
    assert tl.get(key) == [second.pk, first.pk]
    first.created_at = WHEN + timedelta(hours=2)
    first.save()
    assert tl.get(key) == [first.pk, second.pk]

    unregister(Post)
    register(Post, keys=own_timeline, score="created_at", timeline=tl, updates=False)
    writes = tl.stats.writes
    second.created_at = WHEN + timedelta(hours=3)
    second.save()
    assert tl.stats.writes == writes
    assert tl.get(key) == [first.pk, second.pk]


def test_data_that_cannot_be_stored_fails_the_save(tl: Timeline) -> None:
    register(Post, keys=own_timeline, score="created_at", data=lambda p: {p.text}, timeline=tl)
    alice = Person.objects.create(name="alice")
    with pytest.raises(InvalidDataError), transaction.atomic():
        Post.objects.create(author=alice, text="a set is not data", created_at=WHEN)
    assert not Post.objects.exists()


def test_an_item_too_large_for_its_timeline_fails_the_save(tl: Timeline) -> None:
    # Issue 19: it used to commit the row, then raise from the on-commit hook.
    small = Timeline(MemoryBackend(), max_items=100, max_item_bytes=200)
    register(Post, keys=own_timeline, score="created_at", data=lambda p: {"text": p.text},
             timeline=small)
    alice = Person.objects.create(name="alice")
    with pytest.raises(ValueTooLargeError), transaction.atomic():
        Post.objects.create(author=alice, text="x" * 280, created_at=WHEN)
    assert not Post.objects.exists()  # rolled back: a retry will not duplicate it
    post = Post.objects.create(author=alice, text="short", created_at=WHEN)
    assert small.get(f"user:{alice.pk}:posts") == [{"text": "short"}]
    post.delete()  # a tombstone always fits


def test_a_store_down_when_the_timeline_opens_does_not_fail_the_save(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def down() -> Timeline:
        raise UnavailableError("store down")

    register(Post, keys=own_timeline, score="created_at", timeline=down)
    before = failed_writes()
    with caplog.at_level(logging.ERROR, logger="timak.contrib.django"), transaction.atomic():
        Post.objects.create(author=Person.objects.create(name="a"), text="x", created_at=WHEN)
    assert Post.objects.count() == 1
    assert failed_writes() == before + 1


@pytest.mark.parametrize("robust", [False, True])
def test_a_failed_write_after_the_commit_is_logged_and_counted_never_raised(
    tl: Timeline, caplog: pytest.LogCaptureFixture, robust: bool
) -> None:
    register(Post, keys=own_timeline, score="created_at", timeline=tl, robust=robust)
    alice = Person.objects.create(name="alice")
    assert isinstance(tl.connection, MemoryBackend)
    tl.connection.fail_next(UnavailableError("down"))
    before = failed_writes()
    with caplog.at_level(logging.ERROR, logger="timak.contrib.django"), transaction.atomic():
        post = Post.objects.create(author=alice, text="x", created_at=WHEN)
    assert Post.objects.count() == 1  # the row is committed: backfill catches up
    assert f"could not add item {post.pk}" in caplog.text
    assert failed_writes() == before + 1
    assert tl.get(f"user:{alice.pk}:posts") == []
    call_command("timak_backfill", "django_app.Post", stdout=io.StringIO())
    assert tl.get(f"user:{alice.pk}:posts") == [post.pk]


def test_timeline_from_settings_and_from_a_callable() -> None:
    register(Post, keys=own_timeline, score="created_at")
    made: list[Timeline] = []

    def make() -> Timeline:
        made.append(Timeline(MemoryBackend()))
        return made[-1]

    register(Post, keys=lambda p: "all-posts", score=lambda p: p.pk, id=lambda p: f"p{p.pk}",
             timeline=make)
    alice = Person.objects.create(name="alice")
    post = Post.objects.create(author=alice, text="x", created_at=WHEN)
    Post.objects.create(author=alice, text="y", created_at=WHEN)
    assert settings_timeline().max_items == 50
    assert settings_timeline().get(f"user:{alice.pk}:posts")[-1] == post.pk
    assert len(made) == 1  # called once, on first use
    assert made[0].get("all-posts") == [f"p{post.pk + 1}", f"p{post.pk}"]
    bucket = f"b-{uuid.uuid4().hex}"
    with override_settings(TIMAK={"URL": "memory://", "BUCKET": bucket, "FEED": True}):
        assert settings_timeline().bucket == bucket
        assert settings_timeline().feed is not None
    with override_settings(TIMAK={"URLS": "x"}), pytest.raises(ConfigError, match="URLS"):
        settings_timeline()


def test_register_checks_its_arguments(tl: Timeline) -> None:
    with pytest.raises(ConfigError, match="no field 'published'"):
        register(Post, keys=own_timeline, score="published", timeline=tl)
    with pytest.raises(ConfigError, match="keys"):
        register(Post, keys="user:1", score="created_at", timeline=tl)  # type: ignore[arg-type]
    bad_options: list[dict[str, Any]] = [
        {"score": 5}, {"id": "pk"}, {"data": {"text": 1}}, {"timeline": "memory://"},
        {"blind": "yes"}, {"robust": 1}, {"updates": None}, {"chunk": 0}, {"chunk": "10"},
    ]
    for options in bad_options:
        with pytest.raises(ConfigError):
            register(Post, **{"keys": own_timeline, "score": "created_at", "timeline": tl,
                              **options})
    with pytest.raises(ConfigError, match="model class"):
        register(Post(), keys=own_timeline, score="created_at", timeline=tl)  # type: ignore[type-var]
    assert registrations(Post) == []
    with override_settings(TIMAK={"URL": "memory://", "OPTIONS": ["fold_at", 4]}), \
            pytest.raises(ConfigError, match="OPTIONS"):
        settings_timeline()
    with override_settings(TIMAK={"URL": "memory://", "OPTIONS": {"skew_us": -1}}), \
            pytest.raises(ConfigError, match="skew_us"):
        settings_timeline()


def test_backfill_command(tl: Timeline) -> None:
    alice, bob = Person.objects.create(name="alice"), Person.objects.create(name="bob")
    bob.follows.add(alice)
    # bulk_create sends no signals: these rows predate the registration.
    Post.objects.bulk_create(
        Post(author=alice, text=str(i), created_at=WHEN + timedelta(minutes=i))
        for i in range(250)
    )
    register(Post, keys=own_timeline, score="created_at", timeline=tl)
    register(Post, keys=home_timelines, score="created_at", timeline=tl, blind=True)
    out = io.StringIO()
    call_command("timak_backfill", "django_app.Post", "--batch", "100", stdout=out)
    newest_first = list(Post.objects.order_by("-created_at").values_list("pk", flat=True))
    assert tl.get(f"user:{alice.pk}:posts") == newest_first[:100]  # max_items=100
    assert tl.get(f"user:{bob.pk}:home") == newest_first[:100]
    lines = out.getvalue().splitlines()
    assert lines[-2].startswith("django_app.Post: 250/250 (")
    assert lines[-1] == (
        "backfilled 250 django_app.Post rows: 500 timeline writes for 2 registration(s)"
    )
    # Running it again, blind, changes nothing and is safe.
    blind_before = tl.stats.blind_writes
    call_command("timak_backfill", "django_app.Post", "--blind", stdout=io.StringIO())
    assert tl.stats.blind_writes - blind_before == 500  # both registrations wrote blind
    assert tl.get(f"user:{alice.pk}:posts") == newest_first[:100]


def test_backfill_refuses_unknown_or_unregistered_models() -> None:
    with pytest.raises(CommandError, match="not registered"):
        call_command("timak_backfill", "django_app.Person", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no model"):
        call_command("timak_backfill", "django_app.Nope", stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"app_label\.ModelName.*did you mean django_app\.Post"):
        call_command("timak_backfill", "Post", stdout=io.StringIO())  # no app label
    with pytest.raises(CommandError, match="--batch"):
        call_command("timak_backfill", "django_app.Post", "--batch", "0")


# -- activity feeds: follows, unfollows, deletes, pages of rows -------------------


def followers_of(actor: object) -> list[int]:
    return list(Person.objects.filter(follows=actor).values_list("pk", flat=True))


def post_activity(post: Post) -> Activity:
    return Activity(post.author_id, "post", post.pk, time=post.created_at)


@pytest.fixture
def feeds() -> Feeds:
    made = Feeds(MemoryBackend(), followers=followers_of)
    DISCONNECT.append(register_activities(Post, feeds=made, activity=post_activity))
    DISCONNECT.append(connect_follows(Person.follows, feeds=lambda: made, copy_limit=2))
    return made


def home(feeds: Feeds, person: Person) -> list[object]:
    return [a.object for a in feeds.read("home", person.pk).activities]


def test_follow_and_unfollow_through_the_m2m(feeds: Feeds) -> None:
    alice, bob, carol = (Person.objects.create(name=n) for n in ("alice", "bob", "carol"))
    posts = [Post.objects.create(author=alice, text=str(i), created_at=WHEN + timedelta(i))
             for i in range(3)]
    with transaction.atomic():
        bob.follows.add(alice)
        assert home(feeds, bob) == []  # not committed yet
    assert home(feeds, bob) == [posts[2].pk, posts[1].pk]  # copy_limit=2
    new = Post.objects.create(author=alice, text="new", created_at=WHEN + timedelta(5))
    assert home(feeds, bob)[0] == new.pk
    # The other direction of the m2m: alice.followers.add(carol).
    alice.followers.add(carol)
    assert home(feeds, carol) == [new.pk, posts[2].pk]
    bob.follows.remove(alice)
    assert home(feeds, bob) == []
    with pytest.raises(Boom), transaction.atomic():
        alice.followers.clear()
        raise Boom
    assert home(feeds, carol) == [new.pk, posts[2].pk]  # rolled back: nothing removed
    alice.followers.clear()
    assert home(feeds, carol) == []
    carol.follows.add(alice)
    carol.follows.clear()
    assert home(feeds, carol) == []
    assert feeds.count("user", alice.pk) == 4


def test_a_post_deleted_after_an_unfollow_leaves_nothing_behind(feeds: Feeds) -> None:
    alice, bob = Person.objects.create(name="alice"), Person.objects.create(name="bob")
    bob.follows.add(alice)
    post = Post.objects.create(author=alice, text="x", created_at=WHEN)
    assert home(feeds, bob) == [post.pk]
    bob.follows.remove(alice)
    post.delete()
    assert home(feeds, bob) == []
    assert feeds.read("user", alice.pk).activities == []
    records = feeds.timeline("home").get(str(bob.pk), raw=True)
    assert [r.deleted for r in records] == [True]


def test_a_follow_model_drives_follows(feeds: Feeds) -> None:
    DISCONNECT.pop()()  # this app keeps its graph as Follow rows instead
    made = Feeds(feeds.connection, followers=lambda actor: list(
        Follow.objects.filter(target=actor).values_list("follower_id", flat=True)))
    DISCONNECT.append(connect_follow_model(
        Follow, feeds=made, follower="follower_id", target=lambda f: f.target_id))
    alice, bob = Person.objects.create(name="alice"), Person.objects.create(name="bob")
    post = Post.objects.create(author=alice, text="x", created_at=WHEN)
    edge = Follow.objects.create(follower=bob, target=alice)
    assert home(made, bob) == [post.pk]
    edge.delete()
    assert home(made, bob) == []


def test_background_writes_leave_the_request_and_keep_commit_order() -> None:
    """background=True: the post's fan-out runs after the commit in the
    background worker, not in the request; a delete right after its post
    is applied after it (commit order); a rolled-back post writes nothing;
    a failing write is counted, never raised."""
    import threading

    writers: list[str] = []

    class Watched(Feeds):
        def add_activity(self, *args: Any, **kwargs: Any) -> Any:
            writers.append(threading.current_thread().name)
            return super().add_activity(*args, **kwargs)

        def remove_activity(self, *args: Any, **kwargs: Any) -> Any:
            writers.append(threading.current_thread().name)
            return super().remove_activity(*args, **kwargs)

    alice, bob = Person.objects.create(name="alice"), Person.objects.create(name="bob")
    # The worker thread has its own database connection, which cannot see
    # this test's in-memory database: its followers come from here.
    made = Watched(MemoryBackend(), followers=lambda actor: [bob.pk])
    DISCONNECT.append(register_activities(Post, feeds=made, activity=post_activity,
                                          background=True))
    with pytest.raises(Boom), transaction.atomic():
        Post.objects.create(author=alice, text="never", created_at=WHEN)
        raise Boom
    kept = Post.objects.create(author=alice, text="kept", created_at=WHEN)
    gone = Post.objects.create(author=alice, text="gone", created_at=WHEN + timedelta(1))
    gone.delete()
    assert wait_for_background_writes(timeout=10)
    assert home(made, bob) == [kept.pk]
    assert writers == ["timak-background"] * 3  # two adds, one remove, none in the request
    before = failed_writes()
    made.connection.fail_next(UnavailableError("down"), times=50)
    Post.objects.create(author=alice, text="lost for now", created_at=WHEN + timedelta(2))
    assert wait_for_background_writes(timeout=10)
    assert failed_writes() == before + 1


def test_an_activity_too_large_for_a_feed_fails_the_save() -> None:
    # Issue 19: the row was committed, then the on-commit hook raised.
    made = Feeds(MemoryBackend(), followers=followers_of,
                 timeline_options={"max_item_bytes": 300})
    DISCONNECT.append(register_activities(Post, feeds=made, activity=lambda p: Activity(
        p.author_id, "post", p.pk, time=p.created_at, extra={"text": p.text})))
    alice = Person.objects.create(name="alice")
    with pytest.raises(ValueTooLargeError), transaction.atomic():
        Post.objects.create(author=alice, text="x" * 280, created_at=WHEN)
    assert not Post.objects.exists()
    assert made.count("user", alice.pk) == 0
    post = Post.objects.create(author=alice, text="fits", created_at=WHEN)
    assert [a.object for a in made.read("user", alice.pk).activities] == [post.pk]


def test_backfill_covers_activity_registrations(feeds: Feeds) -> None:
    alice, bob = Person.objects.create(name="alice"), Person.objects.create(name="bob")
    bob.follows.add(alice)
    Post.objects.bulk_create(  # no signals
        Post(author=alice, text=str(i), created_at=WHEN + timedelta(minutes=i))
        for i in range(3))
    assert home(feeds, bob) == []
    out = io.StringIO()
    call_command("timak_backfill", "django_app.Post", stdout=out)
    newest_first = list(Post.objects.order_by("-created_at").values_list("pk", flat=True))
    assert home(feeds, bob) == newest_first
    assert [a.object for a in feeds.read("user", alice.pk).activities] == newest_first
    assert out.getvalue().splitlines()[-1] == (
        "backfilled 3 django_app.Post rows: 6 timeline writes for 1 registration(s)")
    DISCONNECT.pop(0)()  # register_activities disconnected: nothing to backfill
    with pytest.raises(CommandError, match="not registered"):
        call_command("timak_backfill", "django_app.Post", stdout=io.StringIO())


def test_an_activity_that_cannot_be_built_fails_the_save() -> None:
    made = Feeds(MemoryBackend(), followers=followers_of)
    DISCONNECT.append(register_activities(
        Post, feeds=made, activity=lambda p: Activity(p.author_id, p.text)))
    alice = Person.objects.create(name="alice")
    with pytest.raises(InvalidActivityError), transaction.atomic():
        Post.objects.create(author=alice, text="", created_at=WHEN)  # no verb
    assert not Post.objects.exists()
    with pytest.raises(ConfigError, match="ManyToManyField"):
        connect_follows(Post.author, feeds=made)


def test_pages_of_rows_skip_deleted_rows_and_are_never_short(feeds: Feeds) -> None:
    alice, bob = Person.objects.create(name="alice"), Person.objects.create(name="bob")
    bob.follows.add(alice)
    posts = [Post.objects.create(author=alice, text=str(i), created_at=WHEN + timedelta(i))
             for i in range(7)]
    # Rows deleted behind the signals' back (raw SQL sends no post_delete)
    # leave their ids on the feed.
    Post.objects.filter(pk__in=[posts[5].pk, posts[4].pk, posts[1].pk])._raw_delete("default")
    first = activity_rows(feeds, "home", bob.pk, Post, limit=3)
    assert [p.text for p in first.rows] == ["6", "3", "2"]
    second = activity_rows(feeds, "home", bob.pk, Post.objects.all(), limit=3,
                           cursor=first.cursor)
    assert ([p.text for p in second.rows], second.cursor) == (["0"], None)
    # The same for a plain timeline written by register().
    tl = Timeline(MemoryBackend())
    for post in posts:
        tl.add("k", post.pk, post.created_at)
    tl.delete("k", posts[6].pk)
    page = timeline_rows(tl, "k", Post, limit=2)
    assert [p.text for p in page.rows] == ["3", "2"]
    rest = timeline_rows(tl, "k", Post, limit=5, cursor=page.cursor)
    assert ([p.text for p in rest.rows], rest.cursor) == (["0"], None)
    with pytest.raises(ConfigError):
        timeline_rows(tl, "k", Post, limit=0)


def test_failed_writes_after_the_commit_are_logged_never_raised(
    feeds: Feeds, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = Person.objects.create(name="alice"), Person.objects.create(name="bob")
    assert isinstance(feeds.connection, MemoryBackend)
    before = failed_writes()
    with caplog.at_level(logging.ERROR, logger="timak.contrib.django"):
        feeds.connection.fail_next(UnavailableError("down"))
        post = Post.objects.create(author=alice, text="x", created_at=WHEN)
        feeds.connection.fail_next(UnavailableError("down"))
        bob.follows.add(alice)
        assert bob.follows.count() == 1  # committed; following again is safe
        DISCONNECT.pop()()
        DISCONNECT.append(connect_follows(Person.follows, feeds=feeds, robust=True))
        feeds.connection.fail_next(UnavailableError("down"))
        bob.follows.remove(alice)
    assert f"could not add activity {post_activity(post).id}" in caplog.text
    assert "could not follow 1 pair(s)" in caplog.text
    assert "could not unfollow 1 pair(s)" in caplog.text
    assert failed_writes() == before + 3
