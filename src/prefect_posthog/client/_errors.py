"""Typed errors built from PostHog's error bodies.

Messages are assembled only from the HTTP status, PostHog's `type`/`code`/`detail`/`attr`
fields (each cut to a bounded length) and the request path, and every one of those passes
through the client's `Redactor` first. They never contain request headers, request bodies
or query strings, because Prefect stores exception text in state messages, logs and (for
failed runs) pickled results.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_MISSING_SCOPE = re.compile(r"missing required scope '([^']+)'")


class PostHogError(Exception):
    """Base class of every error raised by prefect-posthog."""


class InvalidInputError(PostHogError, ValueError):
    """Input rejected before any request was sent.

    Attributes:
        field: The name of the offending argument or field.
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_input_error, (self.field, str(self)))


def _rebuild_input_error(field: str, text: str) -> InvalidInputError:
    err = InvalidInputError.__new__(InvalidInputError)
    err.field = field
    Exception.__init__(err, text)
    return err


class PostHogTransportError(PostHogError):
    """The request could not be completed at the transport level (connect, read, reset)."""


class OutcomeUnknownError(PostHogError):
    """A non-idempotent call may or may not have been applied.

    Raised instead of blindly repeating a create, roll, refresh or password creation whose
    response was lost (transport error after sending, 408 or 5xx). Callers reconcile by
    reading the server state; the flows in this package do so.

    Attributes:
        operation: The client method name, e.g. ``roll_project_secret_api_key``.
    """

    def __init__(self, operation: str, reason: str) -> None:
        self.operation = operation
        self.reason = reason
        super().__init__(
            f"{operation}: outcome unknown ({reason}); the change may have been applied. "
            "Read the current state before repeating it."
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (OutcomeUnknownError, (self.operation, self.reason))


class PostHogAPIError(PostHogError):
    """PostHog answered with an error status.

    Attributes:
        status_code: The HTTP status.
        type: PostHog's error ``type`` (``validation_error``, ``authentication_error``...).
        code: PostHog's error ``code``.
        detail: PostHog's human readable ``detail`` (or the ad-hoc ``error`` text).
        attr: The field the error is about, when PostHog names one.
        method: The HTTP method of the request.
        path: The request path (no query string).
    """

    def __init__(
        self,
        status_code: int,
        *,
        method: str = "",
        path: str = "",
        type: str | None = None,
        code: str | None = None,
        detail: str | None = None,
        attr: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.method = method
        self.path = path
        self.type = type
        self.code = code
        self.detail = detail
        self.attr = attr
        super().__init__(self._message())

    def _message(self) -> str:
        where = f" on {self.method} {self.path}" if self.path else ""
        kind = "/".join(x for x in (self.type, self.code) if x)
        text = f"PostHog returned {self.status_code}{f' {kind}' if kind else ''}{where}"
        if self.detail:
            text += f": {self.detail}"
        if self.attr:
            text += f" (field: {self.attr})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {
            "method": self.method,
            "path": self.path,
            "type": self.type,
            "code": self.code,
            "detail": self.detail,
            "attr": self.attr,
        }
        extra = {k: v for k, v in self.__dict__.items() if k not in kwargs and k != "status_code"}
        return (_rebuild_api_error, (type(self), self.status_code, kwargs, extra))


def _rebuild_api_error(cls: type[PostHogAPIError], status: int, kwargs: dict,
                       extra: dict | None = None) -> PostHogAPIError:
    # Prefect pickles a failed task's exception: keep attributes such as retry_after.
    error = cls(status, **kwargs)
    error.__dict__.update(extra or {})
    return error


class AuthenticationError(PostHogAPIError):
    """401: the personal API key is missing, invalid or revoked."""


class PermissionDeniedError(PostHogAPIError):
    """403: the key lacks a scope, project access or the needed role.

    Attributes:
        missing_scope: The scope PostHog says is missing, when that is the reason.
    """

    @property
    def missing_scope(self) -> str | None:
        match = _MISSING_SCOPE.search(self.detail or "")
        return match.group(1) if match else None


class FeatureNotAvailableError(PermissionDeniedError):
    """403 with PostHog's ad-hoc ``{"error": ...}`` body: the organization's plan lacks a
    feature, typically Advanced Permissions for password-protected sharing."""


class NotFoundError(PostHogAPIError):
    """404: the project, group, insight, dashboard, key or password does not exist."""


class ProjectNotFoundError(NotFoundError):
    """404 ``Project not found.``: the project id (or the host) is wrong, not the object."""


class ValidationError(PostHogAPIError):
    """400: PostHog rejected the input; ``attr`` names the first offending field."""


class PreconditionFailedError(ValidationError):
    """400 with an ad-hoc ``{"error": ...}`` body, e.g. password protection not enabled."""


class UnexpectedResponseError(PostHogError):
    """PostHog (or something in between) answered 2xx with a body this client cannot read.

    For a non-idempotent call the change may have been applied: callers reconcile as after
    `OutcomeUnknownError`. The message names the fields that were wrong, never their values
    (a malformed roll response may still carry the new key).

    Attributes:
        operation: The client method name.
        problems: ``field: problem`` descriptions, without input values.
    """

    def __init__(self, operation: str, problems: list[str]) -> None:
        self.operation = operation
        self.problems = problems
        super().__init__(f"{operation}: unexpected response from PostHog ("
                         + "; ".join(problems) + ")")

    def __reduce__(self) -> tuple[Any, ...]:
        return (UnexpectedResponseError, (self.operation, self.problems))


class RateLimitedError(PostHogAPIError):
    """429 that outlived the client's retries.

    Attributes:
        retry_after: Seconds PostHog asked to wait, if it said.
    """

    retry_after: float | None = None


class CaptureRejectedError(PostHogError):
    """Capture refused a batch for good (a 4xx other than 408/429): it was not accepted.

    Attributes:
        status_code: The HTTP status.
        code: Capture's error code, e.g. ``ingest_key_unknown`` or ``payload_too_large``.
    """

    def __init__(self, status_code: int, code: str | None) -> None:
        self.status_code, self.code = status_code, code
        super().__init__(f"capture refused the batch: HTTP {status_code}"
                         + (f" {code}" if code else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        return (CaptureRejectedError, (self.status_code, self.code))


class ServerError(PostHogAPIError):
    """5xx (or 408) that outlived the client's retries."""


class CaptureFailedError(ServerError):
    """PostHog stored a group property change but failed to emit its event.

    PostHog writes the property first, then reports the event capture failure with the
    capture service's status (often 502). The state change has been applied.
    """


# Longest text kept from one field of an error body; longer is cut (after redaction).
MAX_FIELD = 300
SHORT_FIELD = 100


def keep_field(value: Any, redact: Callable[[str | None], str | None], limit: int) -> str | None:
    """A field of an error body, as text: redacted first (so a secret cut in half by the
    limit is still caught whole), then cut to ``limit`` characters."""
    if value is None:
        return None
    text = redact(value if isinstance(value, str) else str(value)) or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_from_response(
    status_code: int,
    body: Any,
    *,
    method: str,
    path: str,
    retry_after: float | None = None,
    redact: Callable[[str | None], str | None] = lambda text: text,
) -> PostHogAPIError:
    """Build the typed error for an error response.

    Only the allow-listed fields ``type``, ``code``, ``detail`` and ``attr`` (or the ad-hoc
    ``error``) are kept, each redacted with ``redact`` and cut to a bounded length; a
    non-JSON body is kept as a redacted, shortened ``detail``.

    Args:
        status_code: HTTP status.
        body: Parsed JSON body (dict, list, str or None).
        method: HTTP method.
        path: Request path without the query string.
        retry_after: Parsed ``Retry-After`` seconds, for 429s.
        redact: Masks known secrets (and their fragments) in a text.

    Returns:
        The most specific `PostHogAPIError` subclass for the response.
    """
    fields: dict[str, Any] = {"method": method, "path": redact(path) or ""}
    adhoc = _keep_body_fields(body, redact, fields)
    cls = _error_class(status_code, fields, adhoc=adhoc)
    err = cls(status_code, **fields)
    if isinstance(err, RateLimitedError):
        err.retry_after = retry_after
    return err


def _keep_body_fields(body: Any, redact: Callable[[str | None], str | None],
                      fields: dict[str, Any]) -> bool:
    """Copy the allow-listed, redacted fields of ``body``; True for an ad-hoc ``error`` body."""
    if isinstance(body, dict):
        if "error" in body and "type" not in body:
            fields["detail"] = keep_field(body["error"], redact, MAX_FIELD)
            return True
        for name in ("type", "code", "detail", "attr"):
            limit = MAX_FIELD if name == "detail" else SHORT_FIELD
            fields[name] = keep_field(body.get(name), redact, limit)
    elif isinstance(body, str) and body.strip():
        fields["detail"] = keep_field(body.strip(), redact, MAX_FIELD)
    return False


def _error_class(status_code: int, fields: dict[str, Any], *, adhoc: bool
                 ) -> type[PostHogAPIError]:
    """The most specific error class for a status and the body's kept fields."""
    if fields.get("type") in ("capture_http_error", "capture_error"):
        return CaptureFailedError
    if status_code == 401:
        return AuthenticationError
    if status_code == 403:
        return FeatureNotAvailableError if adhoc else PermissionDeniedError
    if status_code == 404:
        return ProjectNotFoundError if fields.get("detail") == "Project not found." \
            else NotFoundError
    if status_code == 429:
        return RateLimitedError
    if status_code == 408 or status_code >= 500:
        return ServerError
    return PreconditionFailedError if adhoc else ValidationError
