"""The client's retry policy, error mapping, rate limiter and secret hygiene.

Exact status/header sequences (HTTP-date Retry-After, a 503 then 200) are driven through an
httpx transport; everything about PostHog's own behaviour is tested against the emulator.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from prefect_posthog.client import (
    AuthenticationError,
    CaptureClient,
    CaptureFailedError,
    CaptureRejectedError,
    FeatureNotAvailableError,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    PostHogAPIError,
    PostHogClient,
    PostHogTransportError,
    PreconditionFailedError,
    RateLimitedError,
    RateLimiter,
    RateWindow,
    RetryPolicy,
    ServerError,
    ValidationError,
    group_identify_event,
    parse_rates,
    parse_retry_after,
)

KEY = "phx_CANARY_policy_key_123"
GROUP = {"group_type_index": 0, "group_key": "acme", "group_properties": {}, "created_at": None}


def scripted(responses: list, seen: list | None = None) -> httpx.MockTransport:
    """A transport answering each request with the next scripted response or exception."""
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.MockTransport(handler)


def make_client(responses: list, seen: list | None = None, sleeps: list | None = None,
                **kwargs) -> PostHogClient:
    sleeps = sleeps if sleeps is not None else []
    return PostHogClient("https://us.posthog.com", KEY, 1, rate_limits=(),
                         transport=scripted(responses, seen), sleep=sleeps.append,
                         retry=RetryPolicy(jitter=0.0, **kwargs))


def test_retries_5xx_on_idempotent_call_then_succeeds() -> None:
    sleeps: list[float] = []
    client = make_client([httpx.Response(503), httpx.Response(502), httpx.Response(200,
                          json=GROUP)], sleeps=sleeps)
    assert client.find_group(0, "acme").group_key == "acme"
    assert sleeps == [0.5, 1.0]  # exponential backoff


def test_retry_after_seconds_is_a_floor() -> None:
    sleeps: list[float] = []
    client = make_client([httpx.Response(429, headers={"Retry-After": "7"}),
                          httpx.Response(200, json=GROUP)], sleeps=sleeps)
    client.find_group(0, "acme")
    assert sleeps == [7.0]


def test_retry_after_jitter_never_shortens_the_wait() -> None:
    policy = RetryPolicy(jitter=0.5)
    assert all(policy.delay(1, 10.0) >= 10.0 for _ in range(200))
    assert max(policy.delay(1, 10.0) for _ in range(200)) > 10.0


def test_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(30.0)
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("-5") == 0.0


def test_429_is_retried_even_for_non_idempotent_calls() -> None:
    # PostHog throttles before the view runs, so a 429 proves nothing was applied.
    seen: list[httpx.Request] = []
    client = make_client([httpx.Response(429, headers={"Retry-After": "1"}),
                          httpx.Response(200, json={"id": "k", "label": "x", "value": "phs_x"})],
                         seen=seen)
    assert client.roll_project_secret_api_key("k").label == "x"
    assert len(seen) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 422])
def test_other_4xx_are_never_retried(status: int) -> None:
    seen: list[httpx.Request] = []
    client = make_client([httpx.Response(status, json={"type": "x", "detail": "no"})], seen=seen)
    with pytest.raises(PostHogAPIError) as info:
        client.find_group(0, "acme")
    assert info.value.status_code == status and len(seen) == 1


@pytest.mark.parametrize("failure", [httpx.Response(500), httpx.Response(503),
                                     httpx.Response(408), httpx.ReadTimeout("t"),
                                     httpx.RemoteProtocolError("dropped")])
def test_non_idempotent_call_is_not_repeated_after_possible_application(failure) -> None:
    seen: list[httpx.Request] = []
    client = make_client([failure], seen=seen)
    with pytest.raises(OutcomeUnknownError) as info:
        client.roll_project_secret_api_key("k")
    assert info.value.operation == "roll_project_secret_api_key"
    assert len(seen) == 1


def test_connect_error_is_retried_for_non_idempotent_calls() -> None:
    # The request never left: repeating it cannot double anything.
    client = make_client([httpx.ConnectError("refused"),
                          httpx.Response(200, json={"id": "k", "label": "x"})])
    assert client.roll_project_secret_api_key("k").id == "k"


def test_transport_errors_exhaust_into_typed_error() -> None:
    client = make_client([httpx.ReadTimeout("t")] * 3, max_attempts=3)
    with pytest.raises(PostHogTransportError):
        client.find_group(0, "acme")


def test_retry_after_beyond_cap_is_raised_not_slept() -> None:
    sleeps: list[float] = []
    client = make_client([httpx.Response(429, headers={"Retry-After": "900"},
                                         json={"type": "throttled_error", "code": "throttled",
                                               "detail": "Request was throttled."})],
                         sleeps=sleeps)
    with pytest.raises(RateLimitedError) as info:
        client.find_group(0, "acme")
    assert info.value.retry_after == 900 and sleeps == []
    # Prefect pickles failed-task exceptions: the wait must survive the round trip.
    assert pickle.loads(pickle.dumps(info.value)).retry_after == 900


@pytest.mark.parametrize(("status", "body", "cls", "check"), [
    (401, {"type": "authentication_error", "code": "authentication_failed",
           "detail": "Personal API key found in request Authorization header is invalid.",
           "attr": None}, AuthenticationError, None),
    (403, {"type": "authentication_error", "code": "permission_denied",
           "detail": "API key missing required scope 'group:write'", "attr": None},
     PermissionDeniedError, lambda e: e.missing_scope == "group:write"),
    (403, {"error": "Sharing with password requires the Advanced Permissions feature"},
     FeatureNotAvailableError, lambda e: "Advanced Permissions" in str(e)),
    (404, {"type": "invalid_request", "code": "not_found", "detail": "Not found.",
           "attr": None}, NotFoundError, None),
    (400, {"type": "validation_error", "code": "max_length",
           "detail": "Ensure this field has no more than 40 characters.", "attr": "label"},
     ValidationError, lambda e: e.attr == "label" and "(field: label)" in str(e)),
    (400, {"error": "Password protection must be enabled before creating passwords"},
     PreconditionFailedError, None),
    (502, {"code": "Failed to submit group property update event.",
           "detail": "capture_http_error", "type": "capture_http_error"},
     CaptureFailedError, None),
    (500, "<html>oops</html>", ServerError, None),
])
def test_error_mapping(status, body, cls, check) -> None:
    response = (httpx.Response(status, json=body) if isinstance(body, dict)
                else httpx.Response(status, text=body))
    client = make_client([response] * 5)
    with pytest.raises(cls) as info:
        client.list_project_secret_api_keys()
    assert info.value.status_code == status
    if check:
        assert check(info.value)


def test_errors_never_carry_key_headers_or_bodies(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"type": "validation_error", "code": "invalid_input",
            "detail": f"echoed {KEY}", "attr": "value"}
    client = make_client([httpx.Response(400, json=body)])
    with pytest.raises(ValidationError) as info:
        client.update_group_property(0, "acme", "plan", "s3cret-body-value")
    text = str(info.value) + repr(info.value) + pickle.dumps(info.value).decode("latin1")
    assert KEY not in text and "s3cret-body-value" not in text and "Bearer" not in text
    assert KEY not in caplog.text and "s3cret-body-value" not in caplog.text
    clone = pickle.loads(pickle.dumps(info.value))
    assert type(clone) is ValidationError and clone.attr == "value"


def test_key_travels_only_in_the_authorization_header() -> None:
    seen: list[httpx.Request] = []
    client = make_client([httpx.Response(200, json=GROUP)], seen=seen)
    client.find_group(0, "acme")
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in str(seen[0].url)
    assert seen[0].url.params["skip_create_notebook"] == "true"
    assert KEY not in repr(client)


@pytest.mark.parametrize(("call", "field"), [
    (lambda c: c.find_group(7, "acme"), "group_type_index"),
    (lambda c: c.find_group(0, ""), "group_key"),
    (lambda c: c.update_group_property(0, "acme", "plan", None), "value"),
    (lambda c: c.update_group_property(0, "acme", "", 1), "key"),
    (lambda c: c.create_project_secret_api_key("x" * 41, ["feature_flag:read"]), "label"),
    (lambda c: c.create_project_secret_api_key("ok", []), "scopes"),
    (lambda c: c.get_sharing("notebook", 1), "resource"),  # type: ignore[arg-type]
    (lambda c: c.get_sharing("insight", "abc"), "insight_id"),
    (lambda c: c.create_sharing_password("insight", 1, raw_password="short"), "raw_password"),
])
def test_bad_input_is_rejected_before_sending(call, field) -> None:
    seen: list[httpx.Request] = []
    client = make_client([], seen=seen)
    with pytest.raises(InvalidInputError) as info:
        call(client)
    assert info.value.field == field and seen == []


def test_empty_key_is_rejected() -> None:
    with pytest.raises(InvalidInputError) as info:
        PostHogClient("https://us.posthog.com", "  ", 1)
    assert info.value.field == "personal_api_key"


def test_parse_rates() -> None:
    assert parse_rates("480/min,4800/h") == (RateWindow(480, 60), RateWindow(4800, 3600))
    assert parse_rates("120/15s") == (RateWindow(120, 15),)
    with pytest.raises(ValueError):
        parse_rates("fast")


def test_rate_limiter_keeps_threads_under_the_window() -> None:
    limiter = RateLimiter((RateWindow(20, 0.5),))
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            slot = limiter.acquire()
            with lock:
                stamps.append(time.monotonic())
            time.sleep(0.002)
            limiter.release(slot)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    # 60 requests at 20 per 0.5 s need at least two full windows.
    assert time.monotonic() - start >= 1.0
    for i in range(len(stamps) - 20):
        assert stamps[i + 20] - stamps[i] >= 0.5 - 1e-3


def test_rate_limiter_pause_holds_everyone() -> None:
    limiter = RateLimiter((RateWindow(1000, 60),))
    limiter.pause(0.3)
    start = time.monotonic()
    limiter.release(limiter.acquire())
    assert time.monotonic() - start >= 0.29


def make_capture(responses: list, seen: list | None = None, sleeps: list | None = None,
                 **kwargs) -> CaptureClient:
    sleeps = sleeps if sleeps is not None else []
    return CaptureClient("https://us.i.posthog.com", "phc_token", sleep=sleeps.append,
                         transport=scripted(responses, seen),
                         retry=RetryPolicy(jitter=0.0, **kwargs))


def test_capture_retries_through_the_same_policy() -> None:
    sleeps: list[float] = []
    seen: list[httpx.Request] = []
    capture = make_capture([httpx.ReadTimeout("t"), httpx.Response(503),
                            httpx.Response(429, headers={"Retry-After": "4"}),
                            httpx.Response(200, json={"status": "Ok"})], seen, sleeps)
    capture.send([group_identify_event("company", "acme", {"plan": "pro"})])
    assert sleeps == [0.5, 1.0, 4.0] and len(seen) == 4  # resending a batch is safe
    assert seen[0].url.path == "/batch/" and seen[0].headers["Content-Encoding"] == "gzip"
    assert "phc_token" not in repr(capture)


def test_capture_refusal_is_final_and_exhaustion_is_a_transport_error() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(CaptureRejectedError) as info:
        make_capture([httpx.Response(400, json={"code": "ingest_key_unknown"})], seen).send([])
    assert (info.value.status_code, info.value.code, len(seen)) == (400, "ingest_key_unknown", 1)
    with pytest.raises(PostHogTransportError, match=r"capture: HTTP 503 .* after 3 attempts"):
        make_capture([httpx.Response(503)] * 3, max_attempts=3).send([])
    with pytest.raises(PostHogTransportError, match=r"capture: ConnectError .* after 2 attempts"):
        make_capture([httpx.ConnectError("refused")] * 2, max_attempts=2).send([])
