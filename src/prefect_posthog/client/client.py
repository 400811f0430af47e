"""`PostHogClient`: one method per endpoint of the slice, one retry policy, one rate limiter.

Works without Prefect:

```python
from prefect_posthog.client import PostHogClient

with PostHogClient("https://us.posthog.com", "phx_...", project_id=12345) as posthog:
    for group in posthog.iter_groups(group_type_index=0):
        print(group.group_key, group.group_properties)
```
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from pydantic import BaseModel, SecretStr
from pydantic import ValidationError as PydanticValidationError

from prefect_posthog.client.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    PostHogAPIError,
    PostHogTransportError,
    UnexpectedResponseError,
    ValidationError,
    error_from_response,
)
from prefect_posthog.client.models import (
    SHARING_PATH_SEGMENT,
    ActivityPage,
    Group,
    GroupsPage,
    GroupType,
    Project,
    ProjectSecretAPIKey,
    ProjectSecretAPIKeysPage,
    PropertyCount,
    RelatedActor,
    SharePasswordCreated,
    SharingConfiguration,
    SharingResource,
)
from prefect_posthog.client.ratelimit import RateLimiter, RateWindow, shared_limiter
from prefect_posthog.client.redaction import SECRETS, Redactor
from prefect_posthog.client.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after

logger = logging.getLogger("prefect_posthog.client")

DEFAULT_RATE_LIMITS = (RateWindow(480, 60.0), RateWindow(4800, 3600.0))
# HogQL queries have their own per-key budget, replacing the default one (SPEC §6.6).
HOGQL_RATE_LIMITS = (RateWindow(120, 3600.0),)
QUERY_MAX_ROWS = 50_000
PathStyle = Literal["projects", "environments"]

# Transport failures that prove the request never reached PostHog.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Of a non-JSON error body only the start is read (and then redacted and cut further).
_MAX_TEXT_BODY = 10_000

M = TypeVar("M", bound=BaseModel)


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


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("prefect-posthog")
    except Exception:
        return "0"


class PostHogClient:
    """Typed client for PostHog's groups, sharing and project secret API key endpoints.

    Args:
        host: PostHog base URL, e.g. ``https://us.posthog.com`` or ``https://eu.posthog.com``.
        personal_api_key: A personal API key (``phx_...``), sent only as a Bearer header.
        project_id: Project (team) id, or ``"@current"``.
        path_style: ``"projects"`` (canonical) or ``"environments"`` (legacy alias).
        timeout: Read/write timeout in seconds.
        connect_timeout: Connect timeout in seconds.
        rate_limits: Windows the client keeps the key under; ``()`` disables the limiter.
            Clients of one key and host in one process share one limiter.
        retry: The retry policy.
        before_request: Called before every request (e.g. a Prefect global concurrency
            limit's ``rate_limit``), to share a budget across processes.
        transport: Optional httpx transport (tests).
        sleep: Sleep function used between retries (tests).
    """

    def __init__(
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
        self.redactor: Redactor = SECRETS
        self.redactor.add(self._key)
        self.host = host.rstrip("/")
        self.project_id = project_id
        self.path_style = path_style
        self.retry = retry or RetryPolicy()
        self.limiter: RateLimiter | None = (
            shared_limiter(self.host, key, tuple(rate_limits)) if rate_limits else None
        )
        self.query_limiter: RateLimiter | None = (
            shared_limiter(self.host, key + "#hogql", HOGQL_RATE_LIMITS) if rate_limits else None
        )
        self._before_request = before_request
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=f"{self.host}/api/{path_style}/{quote(str(project_id), safe='@')}/",
            headers={
                "Authorization": f"Bearer {self._key.get_secret_value()}",
                "User-Agent": f"prefect-posthog/{_version()}",
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            follow_redirects=False,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def __enter__(self) -> PostHogClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PostHogClient(host={self.host!r}, project_id={self.project_id!r})"

    # -- the one request path ------------------------------------------------------------

    def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
        gone_on_retry: Callable[[PostHogAPIError], bool] | None = None,
        headers: dict[str, str] | None = None,
        limited: bool = True,
        limiter: RateLimiter | None = None,
    ) -> Any:
        """Send one logical request under the retry policy and the rate limiter.

        ``gone_on_retry`` marks a delete whose repeat is safe to check: after a failure
        that may have applied it, the call is repeated, and an error that means "already
        gone" on that repeat is a success (returns ``None``).
        """
        retry_safe = idempotent or gone_on_retry is not None
        attempt = 0
        maybe_applied = False
        url_path = f"{self._http.base_url.path}{path}"
        while True:
            attempt += 1
            if self._before_request is not None:
                self._before_request()
            window = limiter or (self.limiter if limited else None)
            slot = window.acquire() if window else None
            try:
                response = self._http.request(method, path, params=params, json=json,
                                              headers=headers)
            except httpx.TransportError as exc:
                reason = type(exc).__name__
                arrived = not isinstance(exc, _NOT_SENT)
                if arrived and not retry_safe:
                    raise OutcomeUnknownError(operation, reason) from None
                maybe_applied = maybe_applied or arrived
                if attempt >= self.retry.max_attempts:
                    raise PostHogTransportError(
                        f"{operation}: {reason} on {method} {url_path} after {attempt} attempts"
                    ) from None
                delay = self.retry.delay(attempt, None)
                logger.warning("%s: %s, retrying in %.1fs (attempt %d)", operation, reason,
                               delay, attempt)
                self._sleep(delay)
                continue
            finally:
                if slot is not None and window is not None:
                    window.release(slot)

            status = response.status_code
            logger.debug("%s %s -> %d (attempt %d)", method, url_path, status, attempt)
            if status < 400:
                if status == 204 or not response.content:
                    return None
                try:
                    return response.json()
                except ValueError:
                    raise UnexpectedResponseError(
                        operation, [f"HTTP {status} body is not JSON"]) from None

            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            error = error_from_response(
                status, self._body(response), method=method, path=url_path,
                retry_after=retry_after, redact=self.redactor.redact,
            )
            if maybe_applied and gone_on_retry is not None and gone_on_retry(error):
                return None
            if status == 429 and retry_after and window is not None:
                window.pause(retry_after)
            if status not in RETRYABLE_STATUSES:
                raise error
            if status != 429:
                # 408/5xx may come after the view ran: only safe calls are repeated.
                if not retry_safe:
                    raise OutcomeUnknownError(operation, f"HTTP {status}") from None
                maybe_applied = True
            too_long = retry_after is not None and retry_after > self.retry.max_retry_after
            if attempt >= self.retry.max_attempts or too_long:
                raise error
            delay = self.retry.delay(attempt, retry_after)
            logger.warning("%s: HTTP %d, retrying in %.1fs (attempt %d)", operation, status,
                           delay, attempt)
            self._sleep(delay)

    @staticmethod
    def _body(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return response.text[:_MAX_TEXT_BODY]

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

    # -- project and queries ---------------------------------------------------------------

    def get_project(self) -> Project:
        """GET ``/api/projects/{id}/``: the project, with its capture token ``api_token``."""
        return self._parse(Project, self._request("get_project", "GET", ""), "get_project")

    def query_groups(
        self, group_type_index: int, *, after: str | None = None,
        limit: int = QUERY_MAX_ROWS,
    ) -> list[tuple[str, dict[str, Any]]]:
        """POST ``query/`` (HogQL): up to ``limit`` groups of a type as ``(key, properties)``,
        ordered by key, after ``after``.

        One call reads up to 50,000 groups, where the groups list reads 100; HogQL has its
        own budget (120 calls an hour per key), which the client keeps separately.
        """
        if not isinstance(group_type_index, int) or not 0 <= group_type_index <= 4:
            raise InvalidInputError("group_type_index", "must be an integer from 0 to 4")
        if not 1 <= limit <= QUERY_MAX_ROWS:
            raise InvalidInputError("limit", f"must be from 1 to {QUERY_MAX_ROWS}")
        text = "select key, properties from groups where index = {idx}"
        values: dict[str, Any] = {"idx": group_type_index}
        if after is not None:
            text += " and key > {after}"
            values["after"] = after
        text += f" order by key limit {int(limit)}"
        data = self._request("query", "POST", "query/", json={
            "query": {"kind": "HogQLQuery", "query": text, "values": values}},
            limited=False, limiter=self.query_limiter)
        rows = data.get("results") if isinstance(data, dict) else None
        if not isinstance(rows, list):
            raise UnexpectedResponseError("query", ["results: missing"])
        out = []
        for row in rows:
            try:
                key, props = row[0], row[1]
                out.append((str(key), json.loads(props) if isinstance(props, str) else props))
            except (IndexError, TypeError, ValueError):
                raise UnexpectedResponseError("query", ["results: not [key, properties]"]
                                              ) from None
        return out

    def iter_group_properties(self, group_type_index: int) -> Iterator[tuple[str, dict]]:
        """Every group of a type as ``(key, properties)``, 50,000 per query call."""
        after: str | None = None
        while True:
            page = self.query_groups(group_type_index, after=after)
            yield from page
            if len(page) < QUERY_MAX_ROWS:
                return
            after = page[-1][0]

    # -- groups --------------------------------------------------------------------------

    def list_group_types(self) -> list[GroupType]:
        """GET ``groups_types/``: the project's group types (index 0-4 and name).

        A cheap read that also proves the project exists: a wrong project id answers
        404 `ProjectNotFoundError`.
        """
        data = self._request("list_group_types", "GET", "groups_types/")
        if not isinstance(data, list):
            raise UnexpectedResponseError("list_group_types", ["body: not a list"])
        return [self._parse(GroupType, item, "list_group_types") for item in data]

    @staticmethod
    def _group_params(group_type_index: int, group_key: str) -> dict[str, Any]:
        if not isinstance(group_type_index, int) or not 0 <= group_type_index <= 4:
            raise InvalidInputError("group_type_index", "must be an integer from 0 to 4 "
                                    "(see Project settings > Groups)")
        if not isinstance(group_key, str) or not group_key:
            raise InvalidInputError("group_key", "must be a non-empty string")
        return {"group_type_index": group_type_index, "group_key": group_key}

    def list_groups(
        self,
        group_type_index: int,
        *,
        search: str | None = None,
        group_key: str | None = None,
        cursor: str | None = None,
    ) -> GroupsPage:
        """GET ``groups/``: one page (100 groups, newest first) of one group type."""
        params: dict[str, Any] = {"group_type_index": group_type_index}
        if group_type_index is None or not isinstance(group_type_index, int):
            raise InvalidInputError("group_type_index", "must be an integer from 0 to 4")
        for name, value in (("search", search), ("group_key", group_key), ("cursor", cursor)):
            if value:
                params[name] = value
        return self._parse(GroupsPage, self._request("list_groups", "GET", "groups/",
                                                   params=params), "list_groups")

    def iter_groups(
        self, group_type_index: int, *, search: str | None = None, group_key: str | None = None
    ) -> Iterator[Group]:
        """Every group of a type, following the keyset cursor in ``next``."""
        cursor: str | None = None
        while True:
            page = self.list_groups(group_type_index, search=search, group_key=group_key,
                                    cursor=cursor)
            yield from page.results
            cursor = query_value(page.next, "cursor")
            if not cursor:
                return

    def create_group(
        self, group_type_index: int, group_key: str, group_properties: dict[str, Any] | None = None
    ) -> Group:
        """POST ``groups/``. Not idempotent: a repeat fails with 400 duplicate key."""
        body = {**self._group_params(group_type_index, group_key),
                "group_properties": group_properties or {}}
        return self._parse(Group, self._request("create_group", "POST", "groups/", json=body,
                                                idempotent=False), "create_group")

    def find_group(self, group_type_index: int, group_key: str) -> Group:
        """GET ``groups/find``, without PostHog's lazy CRM-notebook creation."""
        params = {**self._group_params(group_type_index, group_key), "skip_create_notebook": "true"}
        return self._parse(Group, self._request("find_group", "GET", "groups/find/",
                                                params=params), "find_group")

    def get_group_activity(
        self, group_type_index: int, group_key: str, *, page: int = 1, limit: int = 10
    ) -> ActivityPage:
        """GET ``groups/activity``: one page of a group's activity log."""
        if page < 1:
            raise InvalidInputError("page", "must be 1 or more")
        if not 1 <= limit <= 1000:
            raise InvalidInputError("limit", "must be from 1 to 1000")
        params = {**self._group_params(group_type_index, group_key), "page": page, "limit": limit}
        return self._parse(ActivityPage, self._request("get_group_activity", "GET",
                                                       "groups/activity/", params=params),
                           "get_group_activity")

    def iter_group_activity(
        self, group_type_index: int, group_key: str, *, limit: int = 100
    ) -> Iterator[Any]:
        """Every activity entry of a group, following page numbers."""
        page = 1
        while True:
            result = self.get_group_activity(group_type_index, group_key, page=page, limit=limit)
            yield from result.results
            if not result.next:
                return
            page += 1

    def list_related_groups(
        self, id: str, group_type_index: int | None = None
    ) -> list[RelatedActor]:
        """GET ``groups/related``: actors sharing events with a group (or a person).

        With ``group_type_index``, ``id`` is a group key of that type; without it, a person
        UUID.
        """
        if not id:
            raise InvalidInputError("id", "must be a group key or a person UUID")
        params: dict[str, Any] = {"id": id}
        if group_type_index is not None:
            params["group_type_index"] = group_type_index
        data = self._request("list_related_groups", "GET", "groups/related/", params=params)
        return [self._parse(RelatedActor, item, "list_related_groups") for item in data or []]

    def list_group_property_definitions(self) -> dict[int, list[PropertyCount]]:
        """GET ``groups/property_definitions``: property names per group type, with counts.

        Raises:
            NotFoundError: The PostHog version serving the request has removed this route
                (newer PostHog releases have); use `list_group_property_values` or PostHog's
                property definitions API instead.
        """
        try:
            data = self._request("list_group_property_definitions", "GET",
                                 "groups/property_definitions/")
        except NotFoundError as exc:
            exc.detail = ("this PostHog server no longer serves groups/property_definitions "
                          "(removed in newer releases)")
            exc.args = (exc._message(),)
            raise
        if not isinstance(data, dict):
            raise UnexpectedResponseError("list_group_property_definitions",
                                          ["body: not an object"])
        return {int(k): [self._parse(PropertyCount, x, "list_group_property_definitions")
                         for x in v] for k, v in data.items()}

    def list_group_property_values(
        self, group_type_index: int, key: str, value: str | None = None
    ) -> list[PropertyCount]:
        """GET ``groups/property_values``: the 20 most common values of a property.

        PostHog returns at most 20 values, ordered by count then value; ``value`` filters
        by case-insensitive substring.
        """
        if not key:
            raise InvalidInputError("key", "must be a property name")
        params: dict[str, Any] = {"group_type_index": group_type_index, "key": key}
        if value:
            params["value"] = value
        data = self._request("list_group_property_values", "GET", "groups/property_values/",
                             params=params)
        rows = data.get("results", []) if isinstance(data, dict) else data
        return [self._parse(PropertyCount, x, "list_group_property_values") for x in rows]

    def update_group_property(
        self, group_type_index: int, group_key: str, key: str, value: Any
    ) -> Group:
        """POST ``groups/update_property``: set one property (other properties kept).

        The identifiers go in the query string and the body is ``{key, value}``, as
        PostHog's server reads them. Idempotent in state, so it is retried.
        """
        params = self._group_params(group_type_index, group_key)
        if not isinstance(key, str) or not key:
            raise InvalidInputError("key", "must be a non-empty property name")
        if value is None:
            raise InvalidInputError("value", "must not be null; use delete_group_property to "
                                    "remove a property")
        data = self._request("update_group_property", "POST", "groups/update_property/",
                             params=params, json={"key": key, "value": value})
        return self._parse(Group, data, "update_group_property")

    def delete_group_property(self, group_type_index: int, group_key: str, key: str) -> Group:
        """POST ``groups/delete_property`` with ``{"$unset": key}``.

        PostHog answers 400 when the property is absent, so a blind repeat fails. After a
        failure that may have applied the delete, the client repeats it and treats "does not
        exist" as done, then reads the group back.

        Raises:
            ValidationError: The property is not on the group (first attempt).
        """
        params = self._group_params(group_type_index, group_key)
        if not isinstance(key, str) or not key:
            raise InvalidInputError("key", "must be a non-empty property name")
        data = self._request(
            "delete_group_property", "POST", "groups/delete_property/", params=params,
            json={"$unset": key}, idempotent=False,
            gone_on_retry=lambda e: isinstance(e, ValidationError) and e.attr == "$unset",
        )
        if data is None:
            return self.find_group(group_type_index, group_key)
        return self._parse(Group, data, "delete_group_property")

    # -- sharing -------------------------------------------------------------------------

    @staticmethod
    def _sharing_path(resource: SharingResource, resource_id: int | str) -> str:
        segment = SHARING_PATH_SEGMENT.get(resource)
        if segment is None:
            raise InvalidInputError("resource", "must be one of "
                                    + ", ".join(sorted(SHARING_PATH_SEGMENT)))
        if resource_id is None or str(resource_id) == "":
            raise InvalidInputError(f"{resource}_id", "is required")
        if resource != "session_recording" and not str(resource_id).isdigit():
            raise InvalidInputError(f"{resource}_id", "must be an integer id")
        return f"{segment}/{quote(str(resource_id), safe='')}/sharing/"

    def get_sharing(
        self, resource: SharingResource, resource_id: int | str
    ) -> SharingConfiguration:
        """GET ``{resource}/{id}/sharing/``: the one active sharing configuration.

        When nothing was saved yet PostHog returns an unsaved configuration whose
        ``access_token`` is random on every call.
        """
        data = self._request("get_sharing", "GET", self._sharing_path(resource, resource_id))
        return self._parse(SharingConfiguration, data, "get_sharing")

    def update_sharing(
        self,
        resource: SharingResource,
        resource_id: int | str,
        *,
        enabled: bool | None = None,
        settings: dict[str, Any] | None = None,
        password_required: bool | None = None,
    ) -> SharingConfiguration:
        """PATCH ``{resource}/{id}/sharing/``: enable/disable, settings, password protection.

        Turning sharing on while it is off issues a **new** ``access_token`` (PostHog kills
        every earlier link of the object at once, one in its refresh grace period
        included): the returned configuration carries the live link. Disabling, or
        enabling an already enabled share, keeps the token.

        Raises:
            FeatureNotAvailableError: ``password_required`` without Advanced Permissions.
        """
        body = {k: v for k, v in (("enabled", enabled), ("settings", settings),
                                  ("password_required", password_required)) if v is not None}
        if not body:
            raise InvalidInputError("enabled", "give at least one of enabled, settings, "
                                    "password_required")
        data = self._request("update_sharing", "PATCH", self._sharing_path(resource, resource_id),
                             json=body)
        return self._parse(SharingConfiguration, data, "update_sharing")

    def refresh_sharing(
        self, resource: SharingResource, resource_id: int | str
    ) -> SharingConfiguration:
        """POST ``{resource}/{id}/sharing/refresh/``: rotate the share link's token.

        The old link keeps working for 300 seconds. Active passwords are copied under new
        ids. Not idempotent: a lost response raises `OutcomeUnknownError`.
        """
        data = self._request("refresh_sharing", "POST",
                             self._sharing_path(resource, resource_id) + "refresh/",
                             idempotent=False)
        return self._parse(SharingConfiguration, data, "refresh_sharing")

    def create_sharing_password(
        self,
        resource: SharingResource,
        resource_id: int | str,
        *,
        raw_password: SecretStr | str | None = None,
        note: str | None = None,
    ) -> SharePasswordCreated:
        """POST ``{resource}/{id}/sharing/passwords/``: add a share password (201).

        The response carries the plaintext once, as a `SecretStr`. Without
        ``raw_password`` PostHog generates one. Not idempotent.
        """
        body: dict[str, Any] = {}
        if raw_password is not None:
            raw = (raw_password.get_secret_value() if isinstance(raw_password, SecretStr)
                   else raw_password)
            if len(raw) < 8:
                raise InvalidInputError("raw_password", "must be at least 8 characters long")
            self.redactor.add(raw)
            body["raw_password"] = raw
        if note is not None:
            if len(note) > 100:
                raise InvalidInputError("note", "must be at most 100 characters")
            body["note"] = note
        data = self._request("create_sharing_password", "POST",
                             self._sharing_path(resource, resource_id) + "passwords/",
                             json=body, idempotent=False)
        if isinstance(data, dict):
            self.redactor.add(data.get("password") if isinstance(data.get("password"), str)
                              else None)
        return self._parse(SharePasswordCreated, data, "create_sharing_password")

    def delete_sharing_password(
        self, resource: SharingResource, resource_id: int | str, password_id: int
    ) -> None:
        """DELETE ``{resource}/{id}/sharing/passwords/{password_id}/`` (soft delete, 204).

        A repeat after a lost response answers 404 ``Password not found``; the client
        treats that repeat as done.
        """
        path = self._sharing_path(resource, resource_id) + f"passwords/{int(password_id)}/"
        self._request("delete_sharing_password", "DELETE", path, idempotent=False,
                      gone_on_retry=lambda e: isinstance(e, NotFoundError))

    # -- project secret API keys ---------------------------------------------------------

    @staticmethod
    def _key_body(label: str | None, scopes: list[str] | None, *, partial: bool) -> dict:
        body: dict[str, Any] = {}
        if label is not None or not partial:
            if not label or not label.strip():
                raise InvalidInputError("label", "must be a non-blank string")
            if len(label) > 40:
                raise InvalidInputError("label", "must be at most 40 characters")
            body["label"] = label
        if scopes is not None or not partial:
            if not scopes:
                raise InvalidInputError("scopes", "must list at least one scope, e.g. "
                                        "['feature_flag:read']")
            body["scopes"] = list(scopes)
        return body

    def list_project_secret_api_keys(
        self, *, limit: int = 100, offset: int = 0
    ) -> ProjectSecretAPIKeysPage:
        """GET ``project_secret_api_keys/``: one page, newest first, values hidden."""
        data = self._request("list_project_secret_api_keys", "GET", "project_secret_api_keys/",
                             params={"limit": limit, "offset": offset})
        if isinstance(data, list):  # older PostHog returned a bare array
            data = {"count": len(data), "results": data}
        return self._parse(ProjectSecretAPIKeysPage, data, "list_project_secret_api_keys")

    def iter_project_secret_api_keys(self) -> Iterator[ProjectSecretAPIKey]:
        """Every project secret API key of the project."""
        offset = 0
        while True:
            page = self.list_project_secret_api_keys(limit=100, offset=offset)
            yield from page.results
            if not page.next or not page.results:
                return
            offset += len(page.results)

    def create_project_secret_api_key(self, label: str, scopes: list[str]) -> ProjectSecretAPIKey:
        """POST ``project_secret_api_keys/`` (201); ``value`` is returned only here.

        Not idempotent: a lost response raises `OutcomeUnknownError`; find the key by
        label and roll it to get a usable value.
        """
        data = self._request("create_project_secret_api_key", "POST", "project_secret_api_keys/",
                             json=self._key_body(label, scopes, partial=False), idempotent=False)
        return self._key_with_value(data, "create_project_secret_api_key")

    def _key_with_value(self, data: Any, operation: str) -> ProjectSecretAPIKey:
        # The value is remembered before parsing: a malformed response still must not leak it.
        if isinstance(data, dict) and isinstance(data.get("value"), str):
            self.redactor.add(data["value"])
        return self._parse(ProjectSecretAPIKey, data, operation)

    @staticmethod
    def _key_path(key_id: str) -> str:
        if not key_id or "/" in key_id:
            raise InvalidInputError("key_id", "must be a project secret API key id")
        return f"project_secret_api_keys/{quote(key_id, safe='')}/"

    def get_project_secret_api_key(self, key_id: str) -> ProjectSecretAPIKey:
        """GET ``project_secret_api_keys/{id}/`` (value hidden)."""
        return self._parse(ProjectSecretAPIKey, self._request(
            "get_project_secret_api_key", "GET", self._key_path(key_id)),
            "get_project_secret_api_key")

    def _check_label_free(self, key_id: str, label: str | None) -> None:
        # PostHog checks label uniqueness only on create; a rename onto a used label fails
        # as a database error (500), after the retries. Refuse it before sending.
        if label is None:
            return
        taken = [k for k in self.iter_project_secret_api_keys()
                 if k.label == label.strip() and k.id != key_id]
        if taken:
            raise InvalidInputError("label", f"another project secret API key ({taken[0].id}) "
                                    "already has this label; choose another label")

    def update_project_secret_api_key(
        self, key_id: str, *, label: str | None = None, scopes: list[str] | None = None
    ) -> ProjectSecretAPIKey:
        """PATCH ``project_secret_api_keys/{id}/``: change label and/or scopes."""
        body = self._key_body(label, scopes, partial=True)
        if not body:
            raise InvalidInputError("label", "give a label or scopes to change")
        self._check_label_free(key_id, label)
        return self._parse(ProjectSecretAPIKey, self._request(
            "update_project_secret_api_key", "PATCH", self._key_path(key_id), json=body),
            "update_project_secret_api_key")

    def replace_project_secret_api_key(
        self, key_id: str, label: str, scopes: list[str]
    ) -> ProjectSecretAPIKey:
        """PUT ``project_secret_api_keys/{id}/``: set label and scopes together."""
        body = self._key_body(label, scopes, partial=False)
        self._check_label_free(key_id, label)
        return self._parse(ProjectSecretAPIKey, self._request(
            "replace_project_secret_api_key", "PUT", self._key_path(key_id), json=body),
            "replace_project_secret_api_key")

    def delete_project_secret_api_key(self, key_id: str) -> None:
        """DELETE ``project_secret_api_keys/{id}/`` (204; a repeat after a lost response
        answers 404, which the client treats as done)."""
        self._request("delete_project_secret_api_key", "DELETE", self._key_path(key_id),
                      idempotent=False, gone_on_retry=lambda e: isinstance(e, NotFoundError))

    def roll_project_secret_api_key(self, key_id: str) -> ProjectSecretAPIKey:
        """POST ``project_secret_api_keys/{id}/roll/``: new value, old one dead at once.

        Not idempotent: a lost response raises `OutcomeUnknownError`; compare
        ``last_rolled_at`` to learn whether it happened.
        """
        return self._key_with_value(
            self._request("roll_project_secret_api_key", "POST",
                          self._key_path(key_id) + "roll/", idempotent=False),
            "roll_project_secret_api_key")

    def check_project_secret_api_key(self, value: SecretStr | str) -> bool:
        """Whether a ``phs_`` value authenticates now, the way PostHog checks it.

        Calls feature-flag local evaluation with the value as Bearer token (an action that
        accepts project secret API keys with ``feature_flag:read``). It does not count
        against the personal key's budget.

        Returns:
            True on 200, False on 401.
        """
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        self.redactor.add(raw)
        if not raw or not raw.isascii() or any(c.isspace() for c in raw):
            return False  # not a value PostHog could ever accept; nothing to send
        try:
            self._request("check_project_secret_api_key", "GET",
                          "feature_flags/local_evaluation/",
                          headers={"Authorization": f"Bearer {raw}"}, limited=False)
        except AuthenticationError:
            return False
        return True


def query_value(url: str | None, name: str) -> str | None:
    """One query parameter of a ``next`` URL (PostHog's pagination links are absolute)."""
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get(name)
    return values[0] if values else None
