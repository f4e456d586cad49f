"""How the platform logs in to PostgreSQL as its superuser: SCRAM, never trust. Any user of the machine can
reach a loopback port, so a superuser trusted from loopback is a superuser for everyone; with SCRAM only a
process that can read the deployment's password connects.

The password is the deployment's ``postgres-password`` secret (``runtime.secrets``); libpq reads it from a
password file (``*:*:*:postgres:<password>``, mode 0600) owned by the PostgreSQL service user, so its binaries
(``pg_basebackup``, ``pg_rewind``, a standby's WAL receiver, a subscription's worker) read it as well as the
platform's own processes (root reads any file). Platform connections name the file (``passfile=``); the
processes of a deployment and its servers get it as ``$PGPASSFILE`` for the connection strings written
elsewhere (the shop's regional-store DSN, say). ``regionctl db psql`` is the operator's way in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from regionctl.errors import ConfigError
from regionctl.runtime.osuser import RunAs

SUPERUSER = "postgres"
ENV = "PGPASSFILE"


@dataclass(frozen=True)
class SuperuserLogin:
    passfile: Path

    def password(self) -> str:
        """The password, read back from the file (initdb sets it from here)."""
        try:
            line = self.passfile.read_text().splitlines()[0]
        except (OSError, IndexError) as exc:
            raise ConfigError(f"the superuser password file {self.passfile} cannot be read: {exc}") from None
        return _unescape(line.split(":", 4)[4])


def ensure_login(passfile: Path, password: str, runas: RunAs) -> SuperuserLogin:
    """The password file at ``passfile`` (written once; rewritten if the password changed), in a directory of
    its own that only the service user (and root) may enter."""
    directory = passfile.parent
    line = f"*:*:*:{SUPERUSER}:{_escape(password)}\n"
    try:
        if passfile.read_text() == line:
            return SuperuserLogin(passfile)
    except OSError:
        pass
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    runas.chown(directory)
    tmp = directory / f".superuser.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(line)
    runas.chown(tmp)
    os.replace(tmp, passfile)
    return SuperuserLogin(passfile)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(":", "\\:")


def _unescape(text: str) -> str:
    out, escaped = [], False
    for ch in text:
        if escaped or ch != "\\":
            out.append(ch)
            escaped = False
        else:
            escaped = True
    return "".join(out)
