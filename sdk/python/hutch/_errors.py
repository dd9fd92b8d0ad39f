"""Typed exceptions, one per Connect wire code."""

from __future__ import annotations

from typing import Any


class HutchError(Exception):
    """An error reported by the daemon (or the transport), with its wire code.

    ``code`` is the Connect code as the daemon sends it, e.g. ``"not_found"``;
    catch a subclass (``NotFoundError``) to handle one category.
    """

    code: str = "unknown"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class CanceledError(HutchError):
    code = "canceled"


class UnknownError(HutchError):
    code = "unknown"


class InvalidArgumentError(HutchError):
    code = "invalid_argument"


class DeadlineExceededError(HutchError):
    code = "deadline_exceeded"


class NotFoundError(HutchError):
    code = "not_found"


class AlreadyExistsError(HutchError):
    code = "already_exists"


class PermissionDeniedError(HutchError):
    code = "permission_denied"


class ResourceExhaustedError(HutchError):
    code = "resource_exhausted"


class FailedPreconditionError(HutchError):
    code = "failed_precondition"


class AbortedError(HutchError):
    code = "aborted"


class OutOfRangeError(HutchError):
    code = "out_of_range"


class UnimplementedError(HutchError):
    code = "unimplemented"


class InternalError(HutchError):
    code = "internal"


class UnavailableError(HutchError):
    code = "unavailable"


class DataLossError(HutchError):
    code = "data_loss"


class UnauthenticatedError(HutchError):
    code = "unauthenticated"


_BY_CODE: dict[str, type[HutchError]] = {
    c.code: c
    for c in (
        CanceledError, UnknownError, InvalidArgumentError, DeadlineExceededError, NotFoundError,
        AlreadyExistsError, PermissionDeniedError, ResourceExhaustedError, FailedPreconditionError,
        AbortedError, OutOfRangeError, UnimplementedError, InternalError, UnavailableError,
        DataLossError, UnauthenticatedError,
    )
}

# What an HTTP status means when the body carries no Connect code (a proxy's
# page, a plain-HTTP error), as in Connect's own mapping.
_BY_STATUS = {
    400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied", 404: "not_found",
    408: "deadline_exceeded", 409: "already_exists", 412: "failed_precondition", 413: "resource_exhausted",
    416: "out_of_range", 429: "unavailable", 499: "canceled", 501: "unimplemented",
    502: "unavailable", 503: "unavailable", 504: "unavailable",
}


def error_for(code: str, message: str, details: Any = None) -> HutchError:
    """Returns the exception of a wire code (``HutchError`` for codes it does not know)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return HutchError(message, code=code or "unknown", details=details)
    return cls(message, details=details)


def error_for_status(status: int, body: bytes) -> HutchError:
    """Decodes an error response: a Connect JSON body if there is one, else the status."""
    import json

    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("code"), str) and doc["code"]:
        return error_for(doc["code"], str(doc.get("message", "")), doc.get("details"))
    text = body.decode("utf-8", "replace").strip()
    if not text or len(text) > 512:
        text = f"HTTP {status}"
    return error_for(_BY_STATUS.get(status, "unknown"), f"http {status}: {text}")
