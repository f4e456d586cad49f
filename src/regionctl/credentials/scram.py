"""SCRAM-SHA-256 password verifiers, computed here so a plain password never reaches the server's SQL (nor its
logs, nor pg_stat_statements): ``ALTER ROLE ... PASSWORD`` receives the verifier PostgreSQL itself would store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

ITERATIONS = 4096  # PostgreSQL's scram_iterations default


def verifier(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` (RFC 5802/7677, as PostgreSQL stores it).

    Passwords here are ASCII letters and digits, which SASLprep leaves unchanged."""
    if not password.isascii():
        raise ValueError("only ASCII passwords are supported (SASLprep is not implemented)")
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
