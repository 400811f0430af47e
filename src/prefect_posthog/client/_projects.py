"""Endpoints of PostHog's project and its HogQL query API: ``GET /api/projects/{id}/`` and
``POST query/`` (`posthog/api/project.py`, `posthog/api/query.py`)."""

from __future__ import annotations

import json
from typing import Any

from prefect_posthog.client._api import APIClient
from prefect_posthog.client._errors import InvalidInputError, UnexpectedResponseError
from prefect_posthog.client._limits import QUERY_MAX_ROWS
from prefect_posthog.client._models import Project


class ProjectsClient(APIClient):
    """The project itself and HogQL reads of its groups."""

    def get_project(self) -> Project:
        """GET ``/api/projects/{id}/``: the project, with its capture token ``api_token``."""
        return self._parse(Project, self._request("get_project", "GET", ""), "get_project")

    def query_groups(
        self, group_type_index: int, *, after: str | None = None,
        limit: int = QUERY_MAX_ROWS, start: str | None = None, end: str | None = None,
    ) -> list[tuple[str, dict[str, Any]]]:
        """POST ``query/`` (HogQL): up to ``limit`` groups of a type as ``(key, properties)``,
        ordered by key, after ``after`` (and from ``start`` up to ``end``, both included).

        One call reads up to 50,000 groups, where the groups list reads 100; HogQL has its
        own budget (120 calls an hour per key), which the client keeps separately. Pages
        are keyset pages (``key > {after}``): PostHog refuses OFFSET in personal-key
        queries (`posthog/hogql/user_query_validator.py`).
        """
        if not isinstance(group_type_index, int) or not 0 <= group_type_index <= 4:
            raise InvalidInputError("group_type_index", "must be an integer from 0 to 4")
        if not 1 <= limit <= QUERY_MAX_ROWS:
            raise InvalidInputError("limit", f"must be from 1 to {QUERY_MAX_ROWS}")
        text = "select key, properties from groups where index = {idx}"
        values: dict[str, Any] = {"idx": group_type_index}
        for name, value, condition in (("after", after, " and key > {after}"),
                                       ("start", start, " and key >= {start}"),
                                       ("end", end, " and key <= {end}")):
            if value is not None:
                text += condition
                values[name] = value
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

