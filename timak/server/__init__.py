"""``timak serve``: timelines and activity feeds as a network service.

An ASGI app (Starlette, run by uvicorn) over any store URL: timeline reads
and writes, activity feeds, Server-Sent Events and WebSocket subscriptions,
an OpenAPI document, bearer tokens, ``/healthz``, ``/readyz`` and
``/metrics``. A layer-4 front end: it uses only ``Timeline``,
``timak.activity`` and ``timak.errors``. The guide is ``docs/server.md``;
``timak.client`` is its client, with the library's API.

Needs the ``server`` extra: ``pip install 'timak[server]'`` (in a checkout
of timak, ``pip install '.[server]'``).

Modules (all private): ``_app`` (routes, auth, limits, access log),
``_service`` (what each route does), ``_subscriptions`` (one poller per
key), ``_streams`` (SSE and WebSocket on the wire), ``_errors``
(exceptions to problem responses, in one place), ``_codec`` (JSON in and
out), ``_auth`` (tokens), ``_metrics``, ``_openapi``, ``_config``.
"""

from __future__ import annotations

from ..errors import MissingDriverError

try:
    import prometheus_client  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - the extra is installed in CI
    raise MissingDriverError(
        f"timak.server needs the server extra ({exc.name} is missing): "
        "pip install 'timak[server]' (in a checkout of timak, pip install '.[server]')"
    ) from exc

from ._app import create_app, shutdown
from ._auth import ENV_VAR, Tokens
from ._config import ServerConfig
from ._errors import PROBLEM_TYPE

__all__ = ["ENV_VAR", "PROBLEM_TYPE", "ServerConfig", "Tokens", "create_app", "shutdown"]
