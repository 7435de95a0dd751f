"""Interleaving workers at their await points, deterministically (for tests/contract's model test).

Each worker's invocation runs as a task whose every call to the state store or Graph first waits at
the invocation's gate: the test decides which invocation makes its next call, so any interleaving of
several workers (Azure's instances of one app) can be chosen, replayed and shrunk. A crash is an
invocation whose gate answers `Killed`: from there on it touches nothing (like a SIGKILLed process,
its cleanup code runs but reaches neither storage nor Graph), and its message comes back later.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


class Killed(BaseException):
    """The worker process died: no `except Exception` in the bridge may turn it into an outcome."""


@dataclass
class Invocation:
    """One message being processed by one worker."""

    worker: int
    label: str
    task: asyncio.Task[Any] | None = None
    gate: asyncio.Future[None] | None = None
    #: Set when the invocation waits at its gate (or has finished).
    parked: asyncio.Event = field(default_factory=asyncio.Event)
    #: The call it waits to make, e.g. `store.save_activity`, and the one it made last.
    next_call: str = ""
    last_call: str = ""
    killed: bool = False
    #: Raised by the next call after it was made: its answer lost (a timeout after Graph wrote).
    lose_answer: Exception | None = None

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()


_CURRENT: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar("invocation", default=None)


async def gate(what: str) -> None:
    """Wait until the test lets the current invocation make this call (outside an invocation: go)."""
    invocation = _CURRENT.get()
    if invocation is None:
        return
    if invocation.killed:
        raise Killed
    invocation.gate = asyncio.get_running_loop().create_future()
    invocation.next_call = what
    invocation.parked.set()
    try:
        await invocation.gate
    finally:
        invocation.gate = None


class Gated:
    """`target` with a gate before each of its coroutine methods (async generators pass through);
    `failed` hears of each call that raised (what, the exception): conflicts, Graph errors."""

    def __init__(
        self, target: Any, label: str, failed: Callable[[str, Exception], None] = lambda *_: None
    ) -> None:
        self._target = target
        self._label = label
        self._failed = failed

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        what = f"{self._label}.{name}"

        async def call(*args: Any, **kwargs: Any) -> Any:
            await gate(what)
            try:
                result = await attribute(*args, **kwargs)
                _answer_lost()
                return result
            except Exception as exc:
                self._failed(what, exc)
                raise

        return call


def _answer_lost() -> None:
    invocation = _CURRENT.get()
    if invocation is not None and invocation.lose_answer is not None:
        lost, invocation.lose_answer = invocation.lose_answer, None
        raise lost


class GatedAsyncio:
    """The asyncio module as the code under test sees it, with `sleep(d > 0)` a gated step: waits
    (a backoff before looking a record up again) are interleavings too, not wall-clock time."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay: float, result: Any = None) -> Any:
        if delay > 0:
            await gate("sleep")
        else:
            await asyncio.sleep(0)
        return result


class Scheduler:
    """Runs invocations on one event loop, one call at a time, as the test says."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    def start(self, worker: int, label: str, work: Callable[[], Coroutine[Any, Any, Any]]) -> Invocation:
        """Start `work` as a worker's invocation; it runs until its first call (or its end)."""
        invocation = Invocation(worker, label)
        context = contextvars.copy_context()
        context.run(_CURRENT.set, invocation)
        invocation.task = self.loop.create_task(work(), context=context)
        self._until_parked(invocation)
        return invocation

    def step(self, invocation: Invocation) -> str:
        """Let the invocation make the call it waits at, and run it to its next call (or its end).
        Returns the call made."""
        assert invocation.gate is not None
        assert not invocation.done
        made = invocation.last_call = invocation.next_call
        invocation.parked.clear()
        invocation.gate.set_result(None)
        self._until_parked(invocation)
        return made

    def kill(self, invocation: Invocation) -> None:
        """The worker dies while this invocation waits at a call: nothing more reaches storage or Graph."""
        assert invocation.gate is not None
        assert not invocation.done
        invocation.killed = True
        invocation.parked.clear()
        invocation.gate.set_exception(Killed())
        self.run(asyncio.wait_for(_finished(invocation), 10))
        assert invocation.task is not None
        error = invocation.task.exception()
        assert isinstance(error, Killed), f"a crash came out of the invocation as {error!r}"

    def _until_parked(self, invocation: Invocation) -> None:
        async def parked_or_done() -> None:
            assert invocation.task is not None
            waiting = asyncio.ensure_future(invocation.parked.wait())
            try:
                await asyncio.wait({invocation.task, waiting}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiting.cancel()

        self.run(parked_or_done())


async def _finished(invocation: Invocation) -> None:
    assert invocation.task is not None
    await asyncio.wait({invocation.task})
