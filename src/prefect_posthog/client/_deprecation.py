"""PostHog's deprecation notices reach the user: once per process and deprecated prefix.

PostHog serves ``/api/environments/*`` through the ``/api/projects/*`` views and marks every
such answer with ``Deprecation: true``, ``Sunset: <HTTP date>`` (``API_ENVIRONMENTS_SUNSET_DATE``,
2026-07-31 by default) and ``Link: </api/projects/...>; rel="successor-version"``
(``EnvironmentsRewriteMiddleware`` in ``posthog/middleware.py``).
The answer is otherwise a normal 200, so without reading the headers nobody would notice
until the alias stops answering.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import warnings
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

from prefect_posthog.client._redaction import SECRETS

logger = logging.getLogger("prefect_posthog.client")


class PostHogDeprecationWarning(FutureWarning):
    """PostHog marked a path this client called as deprecated: it may stop answering.

    A `FutureWarning`, not a `DeprecationWarning`: Python (and many test set-ups, this
    project's included) hide `DeprecationWarning` outside ``__main__``, because it is meant
    for the developers of the calling code. This one is for whoever runs the job: it is about
    a server's API, and the fix is a setting (``path_style``), not a code change.
    """


_CLIENT_DIR = str(Path(__file__).parent)
_PREFIX = re.compile(r"^(.*?/api/[^/]+/)")
_LINK = re.compile(r"<([^>]*)>\s*;([^,]*)")
_MARKERS = (b"deprecation", b"sunset")
_SHOWN = 200  # characters of a server-given value shown in the notice
_warned: set[str] = set()
_lock = threading.Lock()


def reset_deprecation_warnings() -> None:
    """Forget which deprecated prefixes were reported, so the next notice warns again."""
    with _lock:
        _warned.clear()


def notice_deprecation(path: str, headers: httpx.Headers) -> None:
    """Warn (and log) once per process and prefix when an answer says its path is deprecated.

    Args:
        path: The request path, without the query string.
        headers: The response headers.
    """
    # Every answer passes here: one pass over the raw names is the cheapest check.
    if not any(name.lower() in _MARKERS for name, _ in headers.raw):
        return
    sunset = headers.get("Sunset")
    match = _PREFIX.match(path)
    prefix = match.group(1) if match else path
    with _lock:
        if prefix in _warned:
            return
        _warned.add(prefix)
    message = _message(path, _successor(path, headers.get("Link")), sunset)
    warnings.warn(message, PostHogDeprecationWarning, stacklevel=_caller_level())
    _run_logger().warning("%s", message)


def _message(path: str, successor: str | None, sunset: str | None) -> str:
    text = f"PostHog marks {_shown(path)} as deprecated"
    if sunset:
        text += f" (sunset {_sunset_date(sunset)})"
    text += f"; its successor is {_shown(successor)}." if successor else \
        "; PostHog names no successor."
    if "/api/environments/" in path:
        text += (" Set path_style='projects' (PostHogCredentials block or PostHogClient) "
                 "to call it.")
    return text


def _successor(path: str, link: str | None) -> str | None:
    for url, params in _LINK.findall(link or ""):
        if re.search(r"""rel\s*=\s*"?[^";]*\bsuccessor-version\b""", params):
            return url.split("?", 1)[0].split("#", 1)[0] or None
    if "/api/environments/" in path:
        return path.replace("/api/environments/", "/api/projects/", 1)
    return None


def _sunset_date(value: str) -> str:
    try:
        return parsedate_to_datetime(value).date().isoformat()
    except (TypeError, ValueError):
        return _shown(value.strip())


def _shown(text: str) -> str:
    # Server-given text passes the secret registry before it is shown, then is cut.
    text = SECRETS.redact(text) or ""
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


def _caller_level() -> int:
    # Point the warning at the first frame outside the client: the caller's own line.
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_CLIENT_DIR):
        frame, level = frame.f_back, level + 1
    return level


def _run_logger() -> logging.Logger | logging.LoggerAdapter:
    # Prefect sends only its run loggers' records to a run's logs in the UI; this logger's
    # would stay on the console. The client works without Prefect, so Prefect is only used
    # when it is already loaded and a run is active.
    context = sys.modules.get("prefect.context")
    if context is not None:
        try:
            if context.get_run_context() is not None:
                from prefect.logging import get_run_logger

                return get_run_logger()
        except Exception:  # no active run: log on the client's own logger
            pass
    return logger
