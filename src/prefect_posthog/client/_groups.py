"""Endpoints of PostHog's groups API: ``groups/`` and ``groups_types/``
(`ee/clickhouse/views/groups.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prefect_posthog.client._api import APIClient, query_value
from prefect_posthog.client._errors import (
    InvalidInputError,
    NotFoundError,
    UnexpectedResponseError,
    ValidationError,
)
from prefect_posthog.client._models import (
    ActivityPage,
    Group,
    GroupsPage,
    GroupType,
    PropertyCount,
    RelatedActor,
)


class GroupsClient(APIClient):
    """Group types, groups, their properties, activity and related actors."""

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

