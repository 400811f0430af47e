"""Tasks for sharing insights, session recordings and dashboards, in one place.

Each resource has the same five tasks — `get_<r>_sharing`, `update_<r>_sharing`,
`create_<r>_sharing_password`, `delete_<r>_sharing_password`, `refresh_<r>_sharing` —
over `/api/projects/{id}/<resources>/{id}/sharing/`, written out in
`insight_sharing.py`, `session_recording_sharing.py` and `dashboard_sharing.py`. Reads
need `sharing_configuration:read`, the rest `sharing_configuration:write`. Password
protection needs the organization's Advanced Permissions feature.
"""

from prefect_posthog.tasks.dashboard_sharing import (
    create_dashboard_sharing_password,
    delete_dashboard_sharing_password,
    get_dashboard_sharing,
    refresh_dashboard_sharing,
    update_dashboard_sharing,
)
from prefect_posthog.tasks.insight_sharing import (
    create_insight_sharing_password,
    delete_insight_sharing_password,
    get_insight_sharing,
    refresh_insight_sharing,
    update_insight_sharing,
)
from prefect_posthog.tasks.session_recording_sharing import (
    create_session_recording_sharing_password,
    delete_session_recording_sharing_password,
    get_session_recording_sharing,
    refresh_session_recording_sharing,
    update_session_recording_sharing,
)

__all__ = [
    "create_dashboard_sharing_password",
    "create_insight_sharing_password",
    "create_session_recording_sharing_password",
    "delete_dashboard_sharing_password",
    "delete_insight_sharing_password",
    "delete_session_recording_sharing_password",
    "get_dashboard_sharing",
    "get_insight_sharing",
    "get_session_recording_sharing",
    "refresh_dashboard_sharing",
    "refresh_insight_sharing",
    "refresh_session_recording_sharing",
    "update_dashboard_sharing",
    "update_insight_sharing",
    "update_session_recording_sharing",
]
