"""The outcome codes of a request and of an attempt, as the recorder stores them (one byte
each) and the tables name them."""

REQUEST_OK, REQUEST_FAILED, REQUEST_REJECTED = 0, 1, 2
STATUS_NAMES = ("ok", "failed", "rejected")
ATTEMPT_OK, ATTEMPT_ERROR, ATTEMPT_RATE_LIMITED, ATTEMPT_TIMEOUT, ATTEMPT_CONTEXT_OVERFLOW, ATTEMPT_CANCELLED = range(6)
OUTCOME_NAMES = ("ok", "error", "rate_limited", "timeout", "context_overflow", "cancelled")
