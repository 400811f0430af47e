"""Endpoints of PostHog's sharing API: ``{insights|session_recordings|dashboards}/{id}/sharing/``
(`posthog/api/sharing.py`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import SecretStr

from prefect_posthog.client._api import APIClient
from prefect_posthog.client._errors import InvalidInputError, NotFoundError
from prefect_posthog.client._models import (
    SHARING_PATH_SEGMENT,
    SharePasswordCreated,
    SharingConfiguration,
    SharingResource,
)


class SharingClient(APIClient):
    """Sharing configurations, share links and share passwords."""

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

