"""The client's one retry decision, on its own: attempt, outcome and the call's nature in,
retry / raise / return out. No transport, no sleeping, no clock."""

from __future__ import annotations

import pytest

from prefect_posthog.client import (
    ErrorAnswer,
    NotFoundError,
    OutcomeUnknownError,
    PostHogTransportError,
    Raise,
    RateLimitedError,
    Retry,
    RetryPolicy,
    Return,
    ServerError,
    TransportFailure,
    ValidationError,
    decide,
    shared_pause,
)

POLICY = RetryPolicy(max_attempts=4, backoff_base=0.5, jitter=0.0, max_retry_after=300.0)


def answer(status: int, retry_after: float | None = None) -> ErrorAnswer:
    cls = {404: NotFoundError, 429: RateLimitedError}.get(
        status, ServerError if status == 408 or status >= 500 else ValidationError)
    return ErrorAnswer(status, cls(status), retry_after)


def lost(reached_server: bool = True, reason: str = "ReadTimeout") -> TransportFailure:
    return TransportFailure(reason, reached_server, PostHogTransportError(f"{reason} x"))


def call(outcome, attempt: int = 1, *, idempotent: bool = True, applied: bool = False,
         gone=None, policy: RetryPolicy = POLICY):
    return decide(policy, attempt, outcome, operation="op", idempotent=idempotent,
                  may_have_been_applied=applied, gone_on_retry=gone)


@pytest.mark.parametrize("outcome", [answer(408), answer(429), answer(500), answer(502),
                                     answer(503), answer(504), lost(), lost(False)])
def test_retryable_failures_of_idempotent_calls_back_off_exponentially(outcome) -> None:
    assert [call(outcome, n) for n in (1, 2, 3)] == [Retry(0.5), Retry(1.0), Retry(2.0)]


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(max_attempts=20, backoff_base=0.5, backoff_max=4.0, jitter=0.0)
    assert call(answer(503), 10, policy=policy) == Retry(4.0)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 422])
def test_other_4xx_are_raised_at_once(status: int) -> None:
    outcome = answer(status)
    assert call(outcome) == Raise(outcome.error)
    assert call(outcome, idempotent=False) == Raise(outcome.error)


def test_the_last_attempt_raises_the_outcomes_error() -> None:
    for outcome in (answer(503), answer(429, 1.0), lost(), lost(False)):
        assert call(outcome, POLICY.max_attempts) == Raise(outcome.error)


def test_retry_after_is_a_floor_and_jitter_only_adds() -> None:
    assert call(answer(429, 7.0)) == Retry(7.0)
    assert call(answer(503, 0.1), 3) == Retry(2.0)  # backoff longer than Retry-After wins
    jittery = RetryPolicy(jitter=0.5)
    delays = [call(answer(429, 10.0), policy=jittery).delay for _ in range(100)]
    assert min(delays) >= 10.0 and max(delays) > 10.0


def test_retry_after_beyond_the_cap_raises_at_once() -> None:
    outcome = answer(429, 900.0)
    decision = call(outcome)
    assert decision == Raise(outcome.error) and isinstance(decision.error, RateLimitedError)
    assert call(answer(429, 300.0)) == Retry(300.0)  # the cap itself is still slept


def test_429_is_retried_for_non_idempotent_calls() -> None:
    # PostHog throttles before the view runs: a 429 proves nothing was applied.
    assert call(answer(429, 1.0), idempotent=False) == Retry(1.0)


@pytest.mark.parametrize("outcome", [answer(408), answer(500), answer(503), lost()])
def test_non_idempotent_call_is_never_repeated_after_possible_application(outcome) -> None:
    decision = call(outcome, idempotent=False)
    assert isinstance(decision, Raise) and isinstance(decision.error, OutcomeUnknownError)
    assert decision.error.operation == "op"
    assert decision.error.reason == ("ReadTimeout" if isinstance(outcome, TransportFailure)
                                     else f"HTTP {outcome.status}")


def test_a_request_that_never_left_is_retried_even_when_not_idempotent() -> None:
    assert call(lost(reached_server=False, reason="ConnectError"), idempotent=False) == Retry(0.5)


def gone(error: Exception) -> bool:
    return isinstance(error, NotFoundError)


def test_gone_on_retry_after_possible_application_is_success() -> None:
    assert call(answer(404), 2, idempotent=False, applied=True, gone=gone) == Return(None)


def test_gone_on_first_attempt_is_the_error() -> None:
    # Nothing earlier may have deleted it: "not found" is the caller's mistake.
    outcome = answer(404)
    assert call(outcome, idempotent=False, applied=False, gone=gone) == Raise(outcome.error)


def test_gone_on_retry_makes_a_delete_repeatable() -> None:
    assert call(lost(), idempotent=False, gone=gone) == Retry(0.5)
    assert call(answer(502), idempotent=False, gone=gone) == Retry(0.5)
    other = answer(400)  # not "gone": still the error
    assert call(other, 2, idempotent=False, applied=True, gone=gone) == Raise(other.error)


def test_which_failures_may_have_applied_a_call() -> None:
    assert [o.may_have_applied for o in (answer(408), answer(500), answer(429), answer(400),
                                         lost(True), lost(False))] == [
        True, True, False, False, True, False]


def test_only_a_429_with_retry_after_pauses_the_whole_key() -> None:
    assert shared_pause(answer(429, 12.0)) == 12.0
    assert shared_pause(answer(429, 900.0)) == 900.0  # also when this call gives up
    assert shared_pause(answer(429)) is None
    assert shared_pause(answer(503, 5.0)) is None
    assert shared_pause(lost()) is None
