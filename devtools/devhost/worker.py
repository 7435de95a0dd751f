"""The dev host's stand-in for the Python language worker of one host instance: it runs invocations,
enforces host.json's `functionTimeout` the way the host does, and "restarts" when one times out.

What the real host does on a timeout (read in the sources, 2024-10 snapshots):

- Azure/azure-webjobs-sdk src/Microsoft.Azure.WebJobs.Host/Executors/FunctionExecutor.cs
  (`StartFunctionTimeout`, `OnFunctionTimeout`, `TryHandleTimeoutAsync`): at the timeout it logs
  "Timeout value of {timeout} exceeded by function '{name}' (Id: '{id}'). Initiating cancellation.",
  and, because host.json's functionTimeout sets ThrowOnTimeout (Azure/azure-functions-host
  src/WebJobs.Script/Config/JobHostFunctionTimeoutOptionsSetup.cs), fails the invocation with a
  FunctionTimeoutException: for a queue message that is a failed attempt (released or poisoned by
  QueueProcessor), for HTTP an error answer.
- Azure/azure-functions-host src/WebJobs.Script.WebHost/WebScriptHostExceptionHandler.cs
  (`OnTimeoutExceptionAsync`): after a grace period (zero for host.json's functionTimeout: the
  GracePeriod of JobHostFunctionTimeoutOptions is never set) it logs "A function timeout has occurred.
  Restarting worker process executing invocationId '{id}'.", asks the dispatcher to restart the
  worker that runs that invocation, then logs "Restart of language worker process(es) completed.".
- Azure/azure-functions-host src/WebJobs.Script/Workers/Rpc/FunctionRegistration/
  RpcFunctionInvocationDispatcher.cs (`RestartWorkerWithInvocationIdAsync`) and
  src/WebJobs.Script/Workers/Rpc/JobHostRpcWorkerChannelManager.cs (`ShutdownChannelIfExistsAsync`):
  the worker process is disposed (killed) with every invocation it was running. No exception is given
  to `TryFailExecutions`, so the host never learns that those other invocations died: each stays
  "running" until its own functionTimeout, then fails as a timeout of its own (and, its invocation id
  no longer being in any worker, restarts nothing: azure-functions-host PR #6072). Issues #8720 and
  #10580 of Azure/azure-functions-host describe exactly this. Their queue messages are therefore not
  deleted: they are renewed while the host waits, then released (or poisoned) as failed attempts.

The dev host runs sync functions in threads it cannot kill: a "killed" sync invocation keeps running
in its thread, its result ignored (the real worker's process dies with it). The module is not
re-imported on a restart (module state survives, unlike in a new worker process).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("devhost")

#: Flex Consumption's default when host.json has no functionTimeout (azure-functions-host
#: src/WebJobs.Script/Config/ScriptJobHostOptionsSetup.cs: DefaultFunctionTimeout, 30 minutes, for every
#: SKU but the (Windows/Linux) Consumption plan's 5 minutes).
DEFAULT_FUNCTION_TIMEOUT = 30 * 60.0


class FunctionTimeout(Exception):
    """An invocation ran past functionTimeout (or died with a restarted worker and reached it)."""


class NonNoneReturn(RuntimeError):
    """A function without a `$return` binding returned a value."""


@dataclass
class Worker:
    """One instance's language worker: the invocations it runs, and its restarts.

    `function_timeout` None: no timeout ("-1" in host.json on the SKUs that allow it).
    """

    function_timeout: float | None = DEFAULT_FUNCTION_TIMEOUT
    restarts: int = 0
    _running: dict[str, asyncio.Task[Any]] = field(default_factory=dict)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def invoke(self, name: str, function: Any, kwargs: dict[str, Any], *, has_return: bool) -> Any:
        """Run one invocation; raise what it raised, NonNoneReturn, or FunctionTimeout."""
        invocation_id = str(uuid.uuid4())
        task = asyncio.create_task(_call(name, function, kwargs, has_return))
        self._running[invocation_id] = task
        try:
            return await self._outcome(name, invocation_id, task)
        finally:
            self._running.pop(invocation_id, None)
            if not task.done():  # the host is stopping (the caller was cancelled)
                task.cancel()

    async def _outcome(self, name: str, invocation_id: str, task: asyncio.Task[Any]) -> Any:
        loop = asyncio.get_running_loop()
        deadline = None if self.function_timeout is None else loop.time() + self.function_timeout
        done, _ = await asyncio.wait({task}, timeout=self.function_timeout)
        if task in done and not task.cancelled():
            return task.result()
        if deadline is None:  # killed by a restart and no timeout: the host would wait forever
            raise FunctionTimeout(f"function {name!r} died with its worker")
        # Killed with a restarted worker: the host still counts it as running until its own timeout.
        await asyncio.sleep(max(0.0, deadline - loop.time()))
        self._timed_out(name, invocation_id)
        raise FunctionTimeout(
            f"Timeout value of {_span(self.function_timeout)} was exceeded by function: {name}"
        )

    def _timed_out(self, name: str, invocation_id: str) -> None:
        timeout = _span(self.function_timeout)
        log.error(
            "Timeout value of %s exceeded by function '%s' (Id: '%s'). Initiating cancellation.",
            timeout,
            name,
            invocation_id,
        )
        log.warning(
            "A function timeout has occurred. Restarting worker process executing invocationId '%s'.",
            invocation_id,
        )
        if invocation_id in self._running:  # not found: "worker is already disposed. No action needed."
            self.restart()
        log.warning("Restart of language worker process(es) completed.")

    def restart(self) -> None:
        """Kill every invocation the worker runs (the process dies with them)."""
        self.restarts += 1
        killed = list(self._running.values())
        self._running.clear()  # the new worker runs nothing yet
        for task in killed:
            task.cancel()
        log.warning("devhost: language worker restarted (%d invocation(s) killed with it)", len(killed))


async def _call(name: str, function: Any, kwargs: dict[str, Any], has_return: bool) -> Any:
    """Call a user function as the Python worker does: async on the loop, sync in a thread; then the
    worker's own check (Azure/azure-functions-python-worker azure_functions_worker/dispatcher.py,
    `_handle__invocation_request`): a function without a `$return` binding (queue and timer triggers
    here) that returns anything but None fails, with this very message (its missing space included)."""
    if inspect.iscoroutinefunction(function):
        result = await function(**kwargs)
    else:
        result = await asyncio.to_thread(function, **kwargs)
    if result is not None and not has_return:
        raise NonNoneReturn(f"function {name!r} without a $return bindingreturned a non-None value")
    return result


def _span(seconds: float | None) -> str:
    """A TimeSpan as .NET prints it (hh:mm:ss), for the host's log lines."""
    total = int(seconds or 0)
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"
