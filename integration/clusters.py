"""The test clusters of ``integration/cassandra``: where each lives and listens.

Shared by ``integration/cassandra`` (which runs them), ``integration/partition``
(which cuts them apart) and ``integration/conftest.py`` (which starts them). Each
cluster has its own work dir, addresses and JMX ports, so all three can run at once:

========  ==========================  =====================  ==============================
cluster   nodes (CQL 9042, storage    JMX ports (on          work dir
          7000 on each address)       127.0.0.1)
========  ==========================  =====================  ==============================
default   127.0.0.1 (or 127.0.0.1-3)  7199 (7299, 7399)      integration/.cassandra
secure    127.0.0.5                   7551                   integration/.cassandra-secure
three     127.0.0.2, .3, .4           7521, 7522, 7523       integration/.cassandra-three
========  ==========================  =====================  ==============================

(The default cluster's optional 3-node form overlaps ``three``; do not run both.)

The three-node cluster's JVMs run with group ids of their own (``gids``): Cassandra
opens its internode connections from 127.0.0.1 whatever its listen address, so
``iptables`` tells a node's outgoing storage traffic apart by its owner's group.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
DEFAULT_HOME = Path(os.environ.get("TIMAK_CASSANDRA_HOME") or (SCRIPT_DIR / ".cassandra")).resolve()


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """Where one named cluster lives: work dir, node addresses and JMX ports."""

    name: str
    cluster_name: str  # Cassandra's cluster_name: nodes of different clusters never join
    addresses: tuple[str, ...]  # node i listens on addresses[i - 1]
    jmx_ports: tuple[int, ...]
    sizes: tuple[int, ...]
    secure: bool = False  # PasswordAuthenticator + client TLS only
    local_reads: bool = False  # GossipingPropertyFileSnitch, no dynamic snitch
    #: group id node i's JVM runs with (root stays its user), or () to keep root's
    gids: tuple[int, ...] = ()

    @property
    def home(self) -> Path:
        if self.name == "default":
            return DEFAULT_HOME
        return DEFAULT_HOME.with_name(f"{DEFAULT_HOME.name}-{self.name}")


CLUSTERS = {
    "default": ClusterSpec("default", "timak-test", ("127.0.0.1", "127.0.0.2", "127.0.0.3"),
                           (7199, 7299, 7399), sizes=(1, 3)),
    "secure": ClusterSpec("secure", "timak-secure", ("127.0.0.5",), (7551,), sizes=(1,),
                          secure=True),
    "three": ClusterSpec("three", "timak-three", ("127.0.0.2", "127.0.0.3", "127.0.0.4"),
                         (7521, 7522, 7523), sizes=(3,), local_reads=True,
                         gids=(47521, 47522, 47523)),
}
