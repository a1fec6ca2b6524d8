"""The Cassandra driver's sockets get ``TCP_NODELAY`` (issue 11, item 1).

Without it the driver's reactor, which writes a request in 4 KiB pieces,
stalled every request over 4 KiB on Nagle plus the server's 40 ms delayed
ACK. No server is needed: the driver's own connection class connects to a
plain listening socket here, and the option is read back from the socket it
opened.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

pytest.importorskip("cassandra", reason="pip install 'timak[cassandra]' to run")

from cassandra.connection import DefaultEndPoint

from timak.backends import cassandra as cb


def test_the_driver_opens_its_sockets_with_nodelay() -> None:
    options = cb.parse_url(urlsplit("cassandra://127.0.0.1/timak_test"))
    cluster = cb.CassandraBackend._make_cluster(options)
    try:
        cluster.connection_class.initialize_reactor()  # what Cluster.connect does first
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            connection = cluster.connection_class(
                DefaultEndPoint("127.0.0.1", port),
                sockopts=cluster.sockopts,
                protocol_version=5,
                connect_timeout=5,
            )
            try:
                opened = connection._socket
                assert opened.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            finally:
                connection.close()
    finally:
        cluster.shutdown()
