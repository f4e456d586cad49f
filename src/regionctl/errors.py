"""The exception tree. Every error names what is wrong in words an operator can act on.

    RegionctlError                  base; the CLI prints its message and exits non-zero
    ├── ConfigError                 settings refused at start (names the field)
    ├── InputError                  a bad argument, flag or request (names it); nothing was changed
    ├── ConflictError               the request is valid but the world forbids it now (e.g. switchover to
    │   │                           the current writer); nothing was changed
    │   └── Pending                 it can be done later, once a region returns (carries the command)
    ├── NotFoundError               a named thing (snapshot, report, execution) does not exist
    ├── OperationTimeout            waited for a condition that did not come
    └── ExternalError               a process or server we drive failed
        ├── ProcessError            a subprocess exited non-zero (carries its stderr tail)
        ├── DatabaseError           PostgreSQL refused or is unreachable
        └── Unreachable             a region's agent cannot be reached (isolated, down, cut off): nothing is
                                    known about it, which is not the same as "down"

``http_status`` and ``error_for_status`` are the one mapping between this tree and HTTP status codes; every
service answers errors as ``{"code": status, "message": ..., "field"?: ...}`` (``runtime.httperrors``). Bad input
is 400 everywhere, whether our code or the request schema found it: the reference catalog's contract answers 400,
and one status per kind of problem matters more than WebDAV's finer 422.
"""

from __future__ import annotations


class RegionctlError(Exception):
    """Base of every error regionctl raises on purpose. ``field`` names the input at fault, when one is."""

    exit_code = 1
    field: str | None = None


class ConfigError(RegionctlError):
    exit_code = 2


class InputError(RegionctlError):
    exit_code = 2

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConflictError(RegionctlError):
    exit_code = 3


class RetryLater(ConflictError):
    """Refused for now only: the same request can succeed after ``retry_after_s`` (a routing wait period)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Pending(ConflictError):
    """Not possible now, possible later (a region cut off): ``command`` is what to run once it is back."""

    def __init__(self, message: str, command: str) -> None:
        super().__init__(f"{message}; once it is back: `{command}`")
        self.command = command


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


class Unreachable(ExternalError):
    pass


class Unauthorized(RegionctlError):
    exit_code = 7


class Forbidden(Unauthorized):
    """The caller is known, and its role does not permit the call (the message names the permission)."""


_STATUSES: tuple[tuple[type[RegionctlError], int], ...] = (
    (InputError, 400), (ConfigError, 400), (Forbidden, 403), (Unauthorized, 401), (NotFoundError, 404),
    (ConflictError, 409), (OperationTimeout, 504), (ExternalError, 503), (RegionctlError, 500),
)
_KINDS: dict[int, type[RegionctlError]] = {400: InputError, 401: Unauthorized, 403: Forbidden, 404: NotFoundError,
                                           409: ConflictError, 504: OperationTimeout}


def http_status(exc: BaseException) -> int:
    """The HTTP status a service answers ``exc`` with: subclasses map like their parents, an error that carries
    its own ``answer_status`` (a refusal relayed from another service) answers with it, anything else is 500."""
    own = getattr(exc, "answer_status", None)
    if isinstance(own, int):
        return own
    return next((code for kind, code in _STATUSES if isinstance(exc, kind)), 500)


def error_for_status(status: int, message: str, field: str | None = None, retry_after_s: float | None = None
                     ) -> RegionctlError:
    """The exception a client raises for an error answer, so callers catch the same types either side."""
    if status == 409 and retry_after_s is not None:
        return RetryLater(message, retry_after_s)
    kind = _KINDS.get(status, InputError if 400 <= status < 500 else ExternalError)
    return InputError(message, field) if kind is InputError else kind(message)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when empty): what a one-line error can hold."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
