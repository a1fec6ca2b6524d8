"""The one mapping from timak's exception tree to HTTP problems, and back:
every exception class in ``timak.errors`` has a status, bad input is 4xx,
store errors are 503 with ``Retry-After``, and the client raises the very
class the service answered with."""

from __future__ import annotations

import inspect

import pytest

import timak.errors as errors

httpx = pytest.importorskip("httpx", reason="needs timak[client]")
pytest.importorskip("starlette", reason="needs timak[server]")

from timak.client._calls import raise_for  # noqa: E402
from timak.server._errors import PROBLEM_TYPE, problem_for, status_for  # noqa: E402

CLASSES = [
    value for value in vars(errors).values()
    if inspect.isclass(value) and issubclass(value, errors.TimakError)
]


def make(cls: type[errors.TimakError]) -> errors.TimakError:
    if cls is errors.CursorExpiredError:
        return cls("gone", pruned_through=1)
    return cls("what went wrong")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_timak_exception_maps_to_a_status_and_back(cls: type[errors.TimakError]) -> None:
    exc = make(cls)
    status = status_for(exc)
    if issubclass(cls, errors.InvalidInputError):
        assert 400 <= status < 500
    elif issubclass(cls, errors.BackendError):
        assert status == 503
    else:
        assert status == 500
    response = problem_for(exc)
    assert response.media_type == PROBLEM_TYPE
    assert (response.headers.get("retry-after") == "1") == (status == 503)
    answer = httpx.Response(status, content=bytes(response.body),
                            headers={"content-type": PROBLEM_TYPE})
    with pytest.raises(cls) as raised:
        raise_for(answer)
    assert type(raised.value) is cls
    assert "what went wrong" in str(raised.value) or cls is errors.CursorExpiredError


@pytest.mark.parametrize(("status", "cls"), [
    (401, errors.AccessDeniedError), (403, errors.AccessDeniedError),
    (503, errors.UnavailableError), (504, errors.BackendTimeoutError),
    (404, errors.InvalidInputError), (502, errors.TimakError),
])
def test_answers_that_name_no_exception_map_by_status(status: int, cls: type) -> None:
    with pytest.raises(cls):
        raise_for(httpx.Response(status, text="<html>proxy says no</html>"))
