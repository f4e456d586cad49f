"""The socket files of the link emulator's unix-domain listeners: claiming a path, and giving back only our own.

A listener's socket file outlives a crashed emulator, so binding removes a *stale* socket at the path (nothing
accepts on it) but refuses a live one (another process listens there) and anything that is not a socket. What
was bound is remembered by (device, inode): closing deletes the file only while it is still the one we bound,
and a file that vanished or was replaced (its directory wiped) tells the rebind loop to listen again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat

from regionctl.errors import ConflictError

SocketId = tuple[int, int]  # (st_dev, st_ino) of a bound socket file


def socket_id(path: str) -> SocketId | None:
    """The identity of the socket file at ``path``; None when there is none (or something else is there)."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISSOCK(st.st_mode) else None


def claim_path(path: str) -> None:
    """Make ``path`` free to bind: remove a stale socket there. ConflictError naming ``listen_path`` when
    something that is not a socket is there, or a process accepts connections on it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConflictError(f"listen_path: cannot check {path}: {exc.strerror or exc}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise ConflictError(f"listen_path: {path} exists and is not a socket; remove it or choose another path")
    if _accepting(path):
        raise ConflictError(f"listen_path: {path} is in use: another process listens on it")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConflictError(f"listen_path: cannot remove the stale socket {path}: {exc.strerror or exc}") from None


def release_path(path: str, bound: SocketId | None) -> None:
    """Delete the socket file at ``path`` if it is still the one bound (``bound``); leave anything else. A file
    that cannot be deleted stays: a stale socket, which the next bind removes."""
    if bound is not None and socket_id(path) == bound:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _accepting(path: str) -> bool:
    """Whether a process listens on the socket at ``path`` (a non-blocking connect is answered or queued)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(path)
        except BlockingIOError:
            return True  # its backlog is full: alive, only busy
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
                return False
            raise ConflictError(f"listen_path: cannot check {path}: {exc.strerror or exc}") from None
        return True
