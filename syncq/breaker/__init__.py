"""A thread-safe circuit breaker that stops calls to a failing dependency.

A `CircuitBreaker` is CLOSED while calls succeed. After `failure_threshold`
consecutive counted failures, or when the failure rate or slow-call rate over a
sliding window reaches its threshold, it OPENS and rejects every call with
`syncq.errors.CircuitOpenError` until `reset_timeout` seconds have passed. Then it
is HALF_OPEN: a bounded number of trial calls run, and their outcome either closes
the breaker or opens it again. `BreakerMetrics` is a snapshot of its counters.

The breaker's lock guards only its state and counters. User functions run without
it, so calls in CLOSED run concurrently. Each state has a small class below, which
the breaker calls with its lock held, so new triggers and states can be added one
class at a time.
"""

from __future__ import annotations

from syncq.breaker._breaker import CircuitBreaker, Listener
from syncq.breaker._metrics import BreakerMetrics
from syncq.breaker._permit import Permit
from syncq.breaker._states import CircuitState

__all__ = ["BreakerMetrics", "CircuitBreaker", "CircuitState", "Listener", "Permit"]
