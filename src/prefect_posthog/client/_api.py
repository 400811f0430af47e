"""The management API's side of the request loop: the key, the project's URL prefix, the
rate limiters, JSON bodies and typed errors. The endpoint classes (`_groups`, `_sharing`,
`_project_secret_api_keys`, `_projects`) subclass `APIClient`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from pydantic import BaseModel, SecretStr
from pydantic import ValidationError as PydanticValidationError

from prefect_posthog.client._base import BaseClient, Call
from prefect_posthog.client._capture import capture_host_for
from prefect_posthog.client._errors import (
    InvalidInputError,
    UnexpectedResponseError,
    error_from_response,
)
from prefect_posthog.client._limits import DEFAULT_RATE_LIMITS, HOGQL_RATE_LIMITS
from prefect_posthog.client._ratelimit import RateLimiter, RateWindow, shared_limiter
from prefect_posthog.client._retry import RetryPolicy

logger = logging.getLogger("prefect_posthog.client")

PathStyle = Literal["projects", "environments"]
M = TypeVar("M", bound=BaseModel)

# Of a non-JSON error body only the start is read (and then redacted and cut further).
_MAX_TEXT_BODY = 10_000


def check_personal_api_key(key: str) -> str:
    """The key without surrounding whitespace, or `InvalidInputError` (never echoing it).

    A key with inner whitespace or non-ASCII characters cannot be valid and would otherwise
    fail late: as a 401 after the rate limiter, or as a bare ``UnicodeEncodeError`` while
    building the ``Authorization`` header.
    """
    key = key.strip()
    if not key:
        raise InvalidInputError("personal_api_key", "is empty; create one in PostHog under "
                                "Settings > Personal API keys")
    if not key.isascii() or any(c.isspace() or not c.isprintable() for c in key):
        raise InvalidInputError("personal_api_key", "contains spaces, line breaks or non-ASCII "
                                "characters; paste the key exactly as PostHog shows it")
    return key


def query_value(url: str | None, name: str) -> str | None:
    """One query parameter of a ``next`` URL (PostHog's pagination links are absolute)."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get(name)
    return values[0] if values else None


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("prefect-posthog")
    except Exception:
        return "0"


class APIClient(BaseClient):
    """A personal API key's client for one project of PostHog's management API.

    Args: as `PostHogClient`.

    Attributes:
        host: PostHog base URL, without a trailing slash.
        ingestion_host: Where PostHog's capture and flags services answer (Cloud's
            ``*.i.posthog.com``, else the host unless given).
        project_id: The project (team) id, or ``"@current"``.
        path_style: ``"projects"`` or ``"environments"``.
        limiter: The key's shared limiter (``None`` when limiting is off).
        query_limiter: The key's shared limiter for HogQL queries, their own budget.
    """

    # The block's settings, passed one by one so the client is usable without Prefect.
    def __init__(  # noqa: PLR0913
        self,
        host: str,
        personal_api_key: SecretStr | str,
        project_id: int | str = "@current",
        *,
        path_style: PathStyle = "projects",
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        rate_limits: tuple[RateWindow, ...] = DEFAULT_RATE_LIMITS,
        retry: RetryPolicy | None = None,
        before_request: Callable[[], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        ingestion_host: str | None = None,
    ) -> None:
        key = (
            personal_api_key.get_secret_value()
            if isinstance(personal_api_key, SecretStr)
            else personal_api_key
        )
        key = check_personal_api_key(key or "")
        if path_style not in ("projects", "environments"):
            raise InvalidInputError("path_style", "must be 'projects' or 'environments'")
        self._key = SecretStr(key)
        # Every secret this client sends or receives joins the process's registry, so no
        # error text, log line or report can carry one, whatever the server answers.
        self.redactor.add(self._key)
        self.host = host.rstrip("/")
        self.ingestion_host = (ingestion_host or capture_host_for(self.host)).rstrip("/")
        self.project_id = project_id
        self.path_style = path_style
        self.limiter: RateLimiter | None = (
            shared_limiter(self.host, key, tuple(rate_limits)) if rate_limits else None
        )
        self.query_limiter: RateLimiter | None = (
            shared_limiter(self.host, key + "#hogql", HOGQL_RATE_LIMITS) if rate_limits else None
        )
        super().__init__(httpx.Client(
            base_url=f"{self.host}/api/{path_style}/{quote(str(project_id), safe='@')}/",
            headers={
                "Authorization": f"Bearer {self._key.get_secret_value()}",
                "User-Agent": f"prefect-posthog/{_version()}",
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            follow_redirects=False,
        ), retry=retry, sleep=sleep, before_request=before_request)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, project_id={self.project_id!r})"

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
        gone_on_retry: Callable[[Exception], bool] | None = None,
        headers: dict[str, str] | None = None,
        limited: bool = True,
        limiter: RateLimiter | None = None,
    ) -> Any:
        """Send one logical request under the retry policy and the key's rate limiter.

        ``gone_on_retry`` marks a delete whose repeat is safe to check: after a failure
        that may have applied it, the call is repeated, and an error that means "already
        gone" on that repeat is a success (returns ``None``). ``limiter`` replaces the
        key's limiter; ``limited=False`` sends without one.
        """
        return self._send(Call(
            operation, method, path, params=params, json=json, headers=headers,
            idempotent=idempotent, gone_on_retry=gone_on_retry,
            limiter=limiter or (self.limiter if limited else None)))

    def _success(self, call: Call, response: httpx.Response) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise UnexpectedResponseError(
                call.operation, [f"HTTP {response.status_code} body is not JSON"]) from None

    def _answer_error(self, call: Call, response: httpx.Response, *, path: str,
                      retry_after: float | None, attempt: int) -> Exception:
        try:
            body = response.json()
        except ValueError:
            body = response.text[:_MAX_TEXT_BODY]
        return error_from_response(response.status_code, body, method=call.method, path=path,
                                   retry_after=retry_after, redact=self.redactor.redact)

    @staticmethod
    def _parse(model: type[M], data: Any, operation: str) -> M:
        """Validate a response body into ``model`` without ever quoting the body.

        Pydantic's own errors quote the input they rejected, and a roll or password
        response carries a secret: only field names and error kinds are kept.
        """
        try:
            return model.model_validate(data)
        except PydanticValidationError as exc:
            problems = [".".join(str(p) for p in e["loc"]) + f": {e['type']}"
                        for e in exc.errors(include_input=False, include_url=False)][:5]
            raise UnexpectedResponseError(operation, problems or ["body: invalid"]) from None
