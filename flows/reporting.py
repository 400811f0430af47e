"""Artifacts and notifications shared by the flows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.blocks.abstract import NotificationBlock
from prefect.logging import get_run_logger

from prefect_posthog.client import SECRETS

# Prefect Cloud rejects request bodies over 5 MiB: keep a table well under it.
MAX_TABLE_ROWS = 5000


def cell(value: Any) -> Any:
    """A value as people read it in a report: yes/no, not Python's True/False."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    return SECRETS.redact(value) if isinstance(value, str) else value


def artifact_key(key: str, dry_run: bool) -> str:
    """Dry runs publish under their own key, so a plan never hides the last real report."""
    return f"{key}-dry-run" if dry_run else key


def publish_report(key: str, title: str, summary: dict[str, Any],
                   rows: Sequence[dict[str, Any]], note: str = "") -> None:
    """A markdown summary plus a table of per-item outcomes, both keyed for the Artifacts page.

    Rows never hold a secret field; every text is still redacted against the secrets the
    process has handled, since some cells (reasons, links) echo what a server answered.
    """
    rows = [{k: cell(v) for k, v in row.items()} for row in rows]
    lines = [f"# {title}", ""]
    lines += [f"- **{name}:** {cell(value)}" for name, value in summary.items()]
    if note:
        lines += ["", SECRETS.redact(note)]
    create_markdown_artifact("\n".join(lines), key=f"{key}-summary", description=title)
    table = list(rows[:MAX_TABLE_ROWS])
    if table:
        create_table_artifact(table, key=key, description=f"{title}: per-item outcomes"
                              + (" (first 5000)" if len(rows) > MAX_TABLE_ROWS else ""))


class JobFailedError(RuntimeError):
    """A job ran to its end but some items (or its notification) failed.

    Raised after the report is published, so a pipeline can catch it, read the artifact and
    decide. Carries no secret: the message names counts and the artifact only.

    Attributes:
        artifact_key: The key of the run's report table (its summary is `<key>-summary`).
        failed: How many items failed.
        noun: What an item is (`row`, `key`, `target`).
        notification_error: Why the notification failed, if it did.
    """

    def __init__(self, artifact_key: str, failed: int, noun: str,
                 notification_error: str | None = None, *, detail: str | None = None) -> None:
        self.artifact_key, self.failed, self.noun = artifact_key, failed, noun
        self.notification_error, self.detail = notification_error, detail
        problems = [detail or f"{failed} {noun}(s) failed"] if failed else []
        if notification_error:
            problems.append(f"notification failed: {notification_error}")
        super().__init__(f"{'; '.join(problems)}; see the {artifact_key} artifact")

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefect pickles a failed run's exception: rebuild it from its fields.
        return (_rebuild_job_failed, (self.artifact_key, self.failed, self.noun,
                                      self.notification_error, self.detail))


def _rebuild_job_failed(artifact_key: str, failed: int, noun: str,
                        notification_error: str | None, detail: str | None) -> JobFailedError:
    return JobFailedError(artifact_key, failed, noun, notification_error, detail=detail)


def finish(key: str, title: str, summary: dict[str, Any], rows: Sequence[dict[str, Any]],
           *, failed: int, noun: str, note: str = "", notification_error: str | None = None,
           detail: str | None = None) -> None:
    """Every job's last step: publish the report, then fail the run if anything failed.

    The report is always written first, so a failed run still shows what happened; the
    failure is a `JobFailedError` naming the artifact.
    """
    publish_report(key, title, summary, rows, note)
    if failed or notification_error:
        raise JobFailedError(key, failed, noun, notification_error, detail=detail)


def notify(block: NotificationBlock | None, subject: str, body: str) -> str | None:
    """Send through any Prefect notification block; return the failure text, if any.

    Apprise-based blocks swallow delivery failures unless asked to raise, so the call runs
    under `raise_on_failure`.
    """
    if block is None:
        return None
    try:
        with block.raise_on_failure():
            block.notify(SECRETS.redact(body) or "", subject=SECRETS.redact(subject))
    except Exception as exc:  # delivery failures of any block type are reported, not raised
        # The exception text can hold the webhook URL, itself a credential: keep only the
        # error type and status.
        status = getattr(getattr(exc, "response", None), "status_code", None)
        reason = type(exc).__name__ + (f" (HTTP {status})" if status else "")
        get_run_logger().error("Notification failed: %s", reason)
        return reason
    return None
