"""A time budget for maintenance that can outgrow one invocation.

The Functions host enforces `functionTimeout` (host.json: 5 minutes): it cancels the invocation and,
for an out-of-process language, restarts the worker, so every invocation in flight on that worker dies
with it (azure-webjobs-sdk `FunctionExecutor` raises the timeout to the exception handler;
azure-functions-host `WebScriptHostExceptionHandler.OnTimeoutExceptionAsync` calls
`_functionInvocationDispatcher.RestartAsync()` for every runtime but .NET). Work that grows with the
data (the poison drain, retrying parked events; the reconcile and retention can take a Deadline too)
must never let the timeout decide: it checks a Deadline between items, stops well before the timeout
and leaves the rest for its next run. Each such job is resumable because what it has not done is still
due (a message still on the queue, a letter whose `next_attempt` has passed).
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Two minutes per run: under half of functionTimeout (a test holds the two apart), so the item in
#: hand when the budget runs out (a few storage requests) finishes long before the host would cancel.
MAINTENANCE_BUDGET_SECONDS = 120.0


class Deadline:
    """A point in monotonic time; `expired()` between items, `remaining()` to bound a wait."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._at = clock() + seconds
        self.seconds = seconds

    @classmethod
    def maintenance(cls) -> Deadline:
        """The budget of one maintenance run."""
        return cls(MAINTENANCE_BUDGET_SECONDS)

    def expired(self) -> bool:
        return self._clock() >= self._at

    def remaining(self) -> float:
        return max(0.0, self._at - self._clock())
