"""PostgreSQL refuses to run as root: when we are root, it runs as a dedicated unprivileged user we create."""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from regionctl.errors import ConfigError, ProcessError


class PopenIdentity(TypedDict, total=False):
    """The identity keyword arguments of ``subprocess.run``/``Popen``."""

    user: int | None
    group: int | None
    extra_groups: list[int]


@dataclass(frozen=True)
class RunAs:
    """Who PostgreSQL processes run as; ``None`` fields mean "the current user"."""

    uid: int | None = None
    gid: int | None = None
    home: str | None = None

    @property
    def is_switching(self) -> bool:
        return self.uid is not None and self.uid != os.geteuid()

    def popen_kwargs(self) -> PopenIdentity:
        if not self.is_switching:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.home:
            env["HOME"] = self.home
        env.pop("PGPASSWORD", None)
        return env

    def chown(self, path: Path) -> None:
        if self.is_switching and self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)


def ensure_runas(user_name: str) -> RunAs:
    """Return the identity PostgreSQL runs as, creating the system user when we are root."""
    if os.geteuid() != 0:
        return RunAs(home=os.environ.get("HOME"))
    try:
        entry = pwd.getpwnam(user_name)
    except KeyError:
        home = f"/var/lib/{user_name}"
        result = subprocess.run(
            ["useradd", "--system", "--user-group", "--home-dir", home, "--create-home",
             "--shell", "/usr/sbin/nologin", user_name],
            capture_output=True, text=True, check=False,
        )
        if result.returncode not in (0, 9):  # 9: created meanwhile by a concurrent caller
            raise ProcessError("useradd", result.returncode, result.stderr) from None
        entry = pwd.getpwnam(user_name)
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir)


def make_owned_dir(path: Path, runas: RunAs, mode: int = 0o700) -> Path:
    """Create ``path`` owned by the PostgreSQL user; its ancestors must let that user through."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if runas.is_switching:
        for ancestor in path.absolute().parents:
            if ancestor.stat().st_mode & 0o001 == 0:
                raise ConfigError(
                    f"data directory parent {ancestor} is not traversable by the PostgreSQL user; "
                    "choose a data_dir outside it or chmod o+x it"
                )
    path.mkdir(exist_ok=True)
    path.chmod(mode)
    runas.chown(path)
    return path
