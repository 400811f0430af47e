"""Redaction of known secrets — and of any long fragment of one — from text.

`SECRETS` is the process's one registry: every client adds its personal API key and every
secret value it sends or receives (rolled key values, share passwords). Every error text
the client builds, every log record of the run loggers, every artifact cell and every
notification passes through it. A fragment is masked as well as the whole value, because a
server (or a proxy) may cut a body mid-secret, leaving a partial key that whole-string
matching would miss.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from pydantic import SecretStr

MASK = "**********"
# A run of this many characters copied from a secret is masked. Shorter runs carry no
# useful part of a 40+ character random key, and shorter windows would mask ordinary words
# wherever a human-chosen share password contains one ("password", a company name...).
FRAGMENT = 12


class Redactor:
    """Knows secrets and masks them, whole or in fragments, wherever they appear in text."""

    def __init__(self, secrets: Iterable[SecretStr | str] = ()) -> None:
        self._grams: set[str] = set()
        self._lock = threading.Lock()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: SecretStr | str | None) -> None:
        """Remember a secret (values shorter than the fragment size are ignored)."""
        if secret is None:
            return
        raw = secret.get_secret_value() if isinstance(secret, SecretStr) else str(secret)
        if len(raw) < FRAGMENT:
            return
        grams = {raw[i:i + FRAGMENT] for i in range(len(raw) - FRAGMENT + 1)}
        with self._lock:
            self._grams |= grams

    def redact(self, text: str | None) -> str | None:
        """``text`` with every run of a known secret's fragments replaced by a mask."""
        if not text or len(text) < FRAGMENT or not self._grams:
            return text
        covered = [False] * len(text)
        hit = False
        for start in range(len(text) - FRAGMENT + 1):
            if text[start:start + FRAGMENT] in self._grams:
                hit = True
                for index in range(start, start + FRAGMENT):
                    covered[index] = True
        if not hit:
            return text
        out: list[str] = []
        masking = False
        for char, secret in zip(text, covered, strict=True):
            if secret:
                if not masking:
                    out.append(MASK)
                masking = True
            else:
                out.append(char)
                masking = False
        return "".join(out)


SECRETS = Redactor()
"""Every secret this process has handled (personal keys, rolled values, share passwords)."""


class RedactingFilter(logging.Filter):
    """Masks known secrets in a log record's final message (a record is never dropped)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is left to logging's own error handling
            return True
        redacted = SECRETS.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = SECRETS.redact(str(record.exc_info[1]))
            if text != str(record.exc_info[1]):
                # The traceback would print the exception's text: keep only its type.
                record.exc_info = None
                record.msg = f"{record.msg} [{text}]"
        return True


def install_log_redaction() -> None:
    """Attach `RedactingFilter` to the loggers this package's runs write to (idempotent).

    A logger's filters see only records logged on that logger itself, so each one is named.
    """
    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect_posthog",
                 "prefect_posthog.client"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
