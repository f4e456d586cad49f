"""One TLS context for the platform's HTTP clients.

httpx builds a TLS context for every client it makes, loading the CA bundle each time (about 70 ms of CPU,
measured), even when every URL is plain http. The global plane makes short-lived clients per read (an agent
client per status, an etcd client per lease lookup): that loading was 44% of the console's CPU. Clients pass
``verify=shared()`` instead; the context is made once per process, the same one httpx would have made.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def shared() -> ssl.SSLContext:
    return httpx.create_ssl_context()
