"""Endpoints of PostHog's project secret API keys: ``project_secret_api_keys/``
(`posthog/api/project_secret_api_key.py`), and the check of a key's value the way its
consumers use it: the flags service's ``/flags/definitions``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from prefect_posthog.client._errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PostHogAPIError,
)
from prefect_posthog.client._models import ProjectSecretAPIKey, ProjectSecretAPIKeysPage
from prefect_posthog.client._projects import ProjectsClient

# `rust/feature-flags/src/api/errors.rs`: the 401 for an unknown project token (`?token=`),
# as opposed to "Secret API token is invalid." for a dead key.
_PROJECT_TOKEN_REFUSED = "The provided API key is invalid"


class ProjectSecretAPIKeysClient(ProjectsClient):
    """Project secret API keys (``phs_...``): list, create, change, delete, roll, check.

    The check needs the project's token, read once per client with `get_project`.
    """

    _project_token: str | None = None

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
        """Whether a ``phs_`` value authenticates now, the way its consumers use it.

        Calls ``GET {ingestion host}/flags/definitions?token=<project token>`` with the
        value as Bearer token: the route PostHog's SDKs poll for local evaluation, served
        by PostHog's flags service (`rust/feature-flags/src/api/flag_definitions.rs`),
        which accepts a project secret key holding ``feature_flag:read``. PostHog answers
        402 ``quota_limited`` only after the key authenticated, so that counts as
        authenticating. A 404 means an older self-hosted PostHog without that route: then
        Django's ``feature_flags/local_evaluation`` (removed by PostHog #62229) is asked
        instead. The project token comes from `get_project` (``project:read``), once per
        client; the personal key's budget is not spent.

        Returns:
            True on 200, 304 or 402; False on 401 (a dead key, one without
            ``feature_flag:read``, or another project's).

        Raises:
            PostHogAPIError: Any other answer (after the retries), or the flags service
                refused the project's token.
        """
        raw = value.get_secret_value() if isinstance(value, SecretStr) else value
        self.redactor.add(raw)
        if not raw or not raw.isascii() or any(c.isspace() for c in raw):
            return False  # not a value PostHog could ever accept; nothing to send
        if self._project_token is None:
            self._project_token = self.get_project().api_token or ""
        try:
            self._request("check_project_secret_api_key", "GET",
                          f"{self.ingestion_host}/flags/definitions",
                          params={"token": self._project_token},
                          headers={"Authorization": f"Bearer {raw}"}, limited=False)
        except AuthenticationError as exc:
            if (exc.detail or "").startswith(_PROJECT_TOKEN_REFUSED):
                raise
            return False
        except NotFoundError:
            return self._check_on_local_evaluation(raw)
        except PostHogAPIError as exc:
            if exc.status_code != 402:
                raise
        return True

    def _check_on_local_evaluation(self, raw: str) -> bool:
        # Older PostHog: Django's action, which took project secret keys with
        # `feature_flag:read` and answered 402 after authentication when quota-limited.
        try:
            self._request("check_project_secret_api_key", "GET",
                          "feature_flags/local_evaluation/",
                          headers={"Authorization": f"Bearer {raw}"}, limited=False)
        except AuthenticationError:
            return False
        except PostHogAPIError as exc:
            if exc.status_code != 402:
                raise
        return True
