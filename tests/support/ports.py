"""Base ports for the deployments tests start, so one run's deployments never take each other's ports or a
port the kernel may hand to an outgoing connection.

Each deployment allocates from its own base (under 20 ports per host), and checks a port free only when it
allocates it: a port in the kernel's ephemeral range can be taken by any client's connection between that
check and the bind (a component then exits with "address in use"), and two deployments started from bases a
few ports apart allocate the same ports for components that are not listening yet. So bases are whole slots
below the ephemeral range, none used twice in one test process.
"""

from __future__ import annotations

import random

from regionctl.runtime.ports import ephemeral_ports

SLOT = 100  # ports per deployment, per host: far more than one allocates
LOWEST = 18000  # above the product's default base (17000), so a `make up` beside the tests keeps its ports
_taken: set[int] = set()


def deployment_base_port() -> int:
    """A base no other deployment of this test process has had, whose slot ends below the ephemeral range."""
    free = [p for p in range(LOWEST, ephemeral_ports().start - SLOT + 1, SLOT) if p not in _taken]
    if not free:
        raise RuntimeError(f"no free slot of {SLOT} ports between {LOWEST} and the ephemeral range")
    port = random.choice(free)
    _taken.add(port)
    return port
