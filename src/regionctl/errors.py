"""The exception tree. Every error names what is wrong in words an operator can act on.

    RegionctlError                  base; the CLI prints its message and exits non-zero
    ├── ConfigError                 settings refused at start (names the field)
    ├── InputError                  a bad argument, flag or request (names it); nothing was changed
    ├── ConflictError               the request is valid but the world forbids it now (e.g. switchover to
    │                               the current writer); nothing was changed
    ├── NotFoundError               a named thing (snapshot, report, execution) does not exist
    ├── OperationTimeout            waited for a condition that did not come
    └── ExternalError               a process or server we drive failed
        ├── ProcessError            a subprocess exited non-zero (carries its stderr tail)
        └── DatabaseError           PostgreSQL refused or is unreachable
"""

from __future__ import annotations


class RegionctlError(Exception):
    """Base of every error regionctl raises on purpose."""

    exit_code = 1


class ConfigError(RegionctlError):
    exit_code = 2


class InputError(RegionctlError):
    exit_code = 2


class ConflictError(RegionctlError):
    exit_code = 3


class RetryLater(ConflictError):
    """Refused for now only: the same request can succeed after ``retry_after_s`` (a routing wait period)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotFoundError(RegionctlError):
    exit_code = 4


class OperationTimeout(RegionctlError):
    exit_code = 5


class ExternalError(RegionctlError):
    exit_code = 6


class ProcessError(ExternalError):
    def __init__(self, command: str, returncode: int, stderr: str) -> None:
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        super().__init__(f"{command} exited with {returncode}: {tail}")
        self.command = command
        self.returncode = returncode
        self.stderr = stderr


class DatabaseError(ExternalError):
    pass


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when empty): what a one-line error can hold."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
