"""Log lines for the breaker's state changes: WARNING when it opens or is disabled."""

from __future__ import annotations

import logging

from syncq.breaker._states import CircuitState, Transition, Trigger

logger = logging.getLogger(__name__)


def log_manual_transition(label: str, event: Transition) -> None:
    """Log a state change made by one of the breaker's manual methods."""
    if event.new is CircuitState.OPEN:
        logger.warning(
            "circuit breaker %s opened by %s() and rejects calls for %g s",
            label,
            event.method,
            event.open_seconds,
        )
    elif event.new is CircuitState.FORCED_OPEN:
        logger.warning(
            "circuit breaker %s forced open by %s() and rejects calls until "
            "close() or reset()",
            label,
            event.method,
        )
    elif event.new is CircuitState.DISABLED:
        logger.warning(
            "circuit breaker %s disabled by %s(): it admits every call and "
            "records nothing until reset()",
            label,
            event.method,
        )
    else:
        logger.info("circuit breaker %s closed by %s()", label, event.method)


def log_automatic_transition(
    label: str, event: Transition, half_open_max_calls: int, success_threshold: int
) -> None:
    """Log a state change caused by call outcomes or by the clock."""
    if event.trigger in (Trigger.FAILURE_RATE, Trigger.SLOW_CALL_RATE):
        logger.warning(
            "circuit breaker %s opened because the %s over the last %d calls "
            "was %.3g, at or above its threshold, and rejects calls for %g s",
            label,
            event.trigger.value,
            event.window_calls,
            event.rate,
            event.open_seconds,
        )
    elif event.trigger is Trigger.TRIAL_TIMEOUT:
        logger.warning(
            "circuit breaker %s reopened because no trial call ended within the "
            "trial timeout, and rejects calls for %g s",
            label,
            event.open_seconds,
        )
    elif event.new is CircuitState.OPEN and event.old is CircuitState.CLOSED:
        logger.warning(
            "circuit breaker %s opened after consecutive failures "
            "(failure_count=%d) and rejects calls for %g s",
            label,
            event.failure_count,
            event.open_seconds,
        )
    elif event.new is CircuitState.OPEN:
        logger.warning(
            "circuit breaker %s reopened because a trial call failed "
            "(failure_count=%d) and rejects calls for %g s",
            label,
            event.failure_count,
            event.open_seconds,
        )
    elif event.new is CircuitState.HALF_OPEN:
        logger.info(
            "circuit breaker %s is half-open and admits trial calls "
            "(half_open_max_calls=%d)",
            label,
            half_open_max_calls,
        )
    else:
        logger.info(
            "circuit breaker %s closed because trial calls succeeded "
            "(success_threshold=%d)",
            label,
            success_threshold,
        )
