"""``timak serve``: run the HTTP service (``timak.server``) with uvicorn.

Starlette, uvicorn and prometheus-client are imported inside the command, so
``timak --help`` needs no extra; without them the command says what to
install (``pip install 'timak[server]'``).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import sys
from typing import Any

from ..backends import redact_url
from ..errors import ConfigError, MissingDriverError
from . import store_url
from ._basic import positive_int

__all__ = ["make_server", "register"]


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve timelines and activity feeds over HTTP (needs timak[server])",
        description="Serve the store over HTTP: timeline reads and writes, activity feeds, "
        "Server-Sent Events and WebSocket subscriptions, /openapi.json, /healthz, /readyz, "
        "/metrics and a /demo page (docs/server.md). Several processes on one store behave "
        "as one service. Tokens: --tokens FILE, else $TIMAK_SERVE_TOKENS; each entry is "
        "read:TOKEN or write:TOKEN. Without tokens anyone may read and write, so the "
        "service then refuses to listen beyond loopback unless --insecure. SIGTERM or "
        "Ctrl-C ends subscriptions cleanly and stops.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=8470,
                        help="port (default: 8470; 0 picks a free one, printed at start)")
    parser.add_argument("--tokens", metavar="FILE",
                        help="file of read:TOKEN / write:TOKEN entries (default: "
                        "$TIMAK_SERVE_TOKENS, else no auth, loopback only)")
    parser.add_argument("--insecure", action="store_true",
                        help="allow listening beyond loopback without tokens")
    parser.add_argument("--poll-interval", type=float, default=1.0, metavar="SECONDS",
                        help="seconds between polls of a subscribed key (default: 1)")
    parser.add_argument("--heartbeat", type=float, default=15.0, metavar="SECONDS",
                        help="seconds between heartbeats on an idle SSE stream (default: 15)")
    parser.add_argument("--max-body-bytes", type=positive_int, default=1024 * 1024,
                        metavar="N", help="largest request body (default: 1 MiB)")
    parser.add_argument("--max-page", type=positive_int, default=1000, metavar="N",
                        help="largest page a read may ask for (default: 1000)")
    parser.add_argument("--max-followers", type=positive_int, default=10_000, metavar="N",
                        help="followers kept per actor in the service's follow graph (default: "
                        "10000; set it once: the graph's keys keep the capacity they were "
                        "made with)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"],
                        help="log level; access logs are JSON lines at info (default: info)")
    parser.set_defaults(func=_serve)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401 (here, to say what to install)

        from ..server import ServerConfig, Tokens
    except ImportError as exc:
        if isinstance(exc, MissingDriverError):
            raise
        raise MissingDriverError(
            f"timak serve needs the server extra ({exc.name} is missing): "
            "pip install 'timak[server]' (in a checkout of timak, pip install '.[server]')"
        ) from exc
    tokens = Tokens.load(args.tokens)
    if tokens.open and not _loopback(args.host) and not args.insecure:
        raise ConfigError(
            f"no tokens (--tokens FILE or $TIMAK_SERVE_TOKENS): refusing to listen on "
            f"{args.host}, beyond loopback; give tokens, or --insecure"
        )
    if args.poll_interval <= 0 or args.heartbeat <= 0:
        raise ConfigError("--poll-interval and --heartbeat must be above 0")
    url = store_url(args)
    config = ServerConfig(
        url, tokens, poll_interval=args.poll_interval, heartbeat=args.heartbeat,
        max_body_bytes=args.max_body_bytes, max_page=args.max_page,
        max_followers=args.max_followers,
    )
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    make_server(config, args.host, args.port, args.log_level).run()
    return 0


def make_server(config: Any, host: str, port: int, log_level: str = "info") -> Any:
    """A ``uvicorn.Server`` for ``create_app(config)`` that prints where it
    listens and ends the subscriptions before uvicorn waits for connections.
    ``timak serve`` runs it; the tests run one in a thread."""
    import uvicorn

    from ..server import create_app, shutdown

    app = create_app(config)
    auth = "no auth (loopback)" if config.tokens.open else "bearer tokens"

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            for server in self.servers:
                for sock in server.sockets:
                    where, bound = sock.getsockname()[:2]
                    print(f"timak serve: listening on http://{where}:{bound} "
                          f"(store {redact_url(config.url)}, {auth})", file=sys.stderr,
                          flush=True)

        async def shutdown(self, sockets: Any = None) -> None:
            # End the subscriptions first (SSE "bye", WebSocket 1001), and give
            # them a moment to be sent: uvicorn then waits for the requests
            # in flight, and would close WebSockets with its own 1012.
            shutdown(app)
            await asyncio.sleep(0.2)
            await super().shutdown(sockets)

    return Server(uvicorn.Config(
        app, host=host, port=port, access_log=False, log_level=log_level,
        lifespan="on", timeout_graceful_shutdown=10, server_header=False,
    ))
