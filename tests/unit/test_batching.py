"""Graph requests in JSON batches for the operators' commands: each answer on its own, throttled
requests waiting their own Retry-After, pacing by the request."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from shared.graph.errors import GraphError
from shared.operations.batching import THROTTLE_ATTEMPTS, Pacer, in_batches


def throttle(seconds: float | None = 3) -> GraphError:
    return GraphError(429, "TooManyRequests", "Please retry again later.", retry_after=seconds)


class Graph:
    """Answers each key with its upper case, unless told to fail it (once per failure listed)."""

    def __init__(self, failures: dict[str, list[GraphError]] | None = None) -> None:
        self.failures = failures or {}
        self.sent: list[list[str]] = []

    async def send(self, keys: Sequence[str]) -> list[str | GraphError]:
        self.sent.append(list(keys))
        return [self.failures[k].pop(0) if self.failures.get(k) else k.upper() for k in keys]


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def collect(
    graph: Graph, keys: list[str], sleep: Sleeps, pacer: Pacer | None = None
) -> list[tuple[str, object]]:
    return [answer async for answer in in_batches(keys, graph.send, sleep=sleep, pacer=pacer)]


async def test_keys_go_twenty_to_a_batch_and_every_answer_is_used() -> None:
    graph, keys = Graph(), [f"k{n}" for n in range(45)]
    answers = await collect(graph, keys, Sleeps())
    assert [len(batch) for batch in graph.sent] == [20, 20, 5]
    assert answers == [(k, k.upper()) for k in keys]


async def test_a_throttled_request_waits_its_retry_after_and_goes_again_alone() -> None:
    graph, sleep = Graph({"b": [throttle(3)]}), Sleeps()
    answers = await collect(graph, ["a", "b", "c"], sleep)
    assert answers == [("a", "A"), ("c", "C"), ("b", "B")]  # a and c used at once
    assert graph.sent == [["a", "b", "c"], ["b"]]
    assert sleep.waits == [3.0]


async def test_a_request_that_waited_rides_with_fresh_keys() -> None:
    graph = Graph({"k0": [throttle(0)]})
    await collect(graph, [f"k{n}" for n in range(25)], Sleeps())
    assert [len(batch) for batch in graph.sent] == [20, 6]
    assert graph.sent[1][0] == "k0"


async def test_without_retry_after_the_waits_grow() -> None:
    graph, sleep = Graph({"a": [throttle(None), throttle(None)]}), Sleeps()
    assert await collect(graph, ["a"], sleep) == [("a", "A")]
    assert sleep.waits == [2.0, 4.0]


async def test_a_request_throttled_every_time_ends_with_its_error() -> None:
    graph = Graph({"a": [throttle(1) for _ in range(THROTTLE_ATTEMPTS)]})
    [(key, answer)] = await collect(graph, ["a"], Sleeps())
    assert isinstance(answer, GraphError)
    assert (key, answer.status, len(graph.sent)) == ("a", 429, THROTTLE_ATTEMPTS)


async def test_a_request_refused_is_answered_with_its_error_at_once() -> None:
    refused = GraphError(400, "BadRequest", "no")
    graph = Graph({"a": [refused]})
    assert await collect(graph, ["a", "b"], Sleeps()) == [("a", refused), ("b", "B")]
    assert len(graph.sent) == 1


async def test_a_whole_batch_throttled_goes_again_and_a_refused_one_raises() -> None:
    calls: list[int] = []

    async def throttled_once(keys: Sequence[str]) -> list[str | GraphError]:
        calls.append(len(keys))
        if len(calls) == 1:
            raise throttle(5)
        return [k.upper() for k in keys]

    sleep = Sleeps()
    answers = [a async for a in in_batches(["a", "b"], throttled_once, sleep=sleep)]
    assert (answers, calls, sleep.waits) == ([("a", "A"), ("b", "B")], [2, 2], [5.0])

    async def refused(keys: Sequence[str]) -> list[str | GraphError]:
        raise GraphError(403, "Forbidden", "no")

    with pytest.raises(GraphError):
        [a async for a in in_batches(["a"], refused, sleep=sleep)]


async def test_pacing_counts_the_requests_in_a_batch() -> None:
    sleep = Sleeps()
    graph = Graph()
    await collect(graph, [f"k{n}" for n in range(40)], Sleeps(), Pacer(10.0, sleep))
    # 20 requests at 10 a second: the second batch waits about two seconds after the first.
    assert len(sleep.waits) == 1
    assert 1.9 < sleep.waits[0] <= 2.0


async def test_a_wait_that_would_outlast_the_timers_budget_is_not_waited_for() -> None:
    """The learning API names its waits in minutes ("Retry after 2 minutes"): a timer run with a
    two-minute budget takes that answer as the request's error instead of sleeping past
    functionTimeout; a wait within the budget is still waited."""
    from shared.delivery.deadline import Deadline

    minutes = GraphError(429, "tooManyRequests", "Retry after 2 minutes")
    graph, sleep = Graph({"a": [minutes], "b": [throttle(3)]}), Sleeps()
    deadline = Deadline(60, clock=lambda: 0.0)
    answers = [a async for a in in_batches(["a", "b"], graph.send, sleep=sleep, deadline=deadline)]
    assert answers[0] == ("a", minutes)
    assert answers[1] == ("b", "B")
    assert sleep.waits == [3.0]


async def test_a_command_told_to_wait_minutes_waits_them_and_says_so_on_stderr(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from shared.operations.batching import throttled

    answers: list[Exception | str] = [GraphError(429, "tooManyRequests", "Retry after 5 minutes"), "done"]
    waits: list[float] = []

    async def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    with caplog.at_level("WARNING", logger="shared.operations.batching"):
        assert await throttled(call, sleep) == "done"
    assert waits == [300.0]
    assert "waiting 300 s as it asks" in caplog.text


async def test_a_wait_longer_than_a_command_waits_fails_the_request_naming_the_wait() -> None:
    from shared.operations.batching import LONGEST_WAIT, throttled

    async def call() -> str:
        raise GraphError(503, "serviceUnavailable", "Retry after 30 minutes")

    async def sleep(seconds: float) -> None:
        raise AssertionError("no wait longer than LONGEST_WAIT is taken")

    with pytest.raises(GraphError) as refused:
        await throttled(call, sleep)
    assert refused.value.status == 503
    assert f"longer than the {LONGEST_WAIT:.0f} s an operator command waits" in refused.value.message
    answers = [a async for a in in_batches(["a"], _always_refused_for_half_an_hour, sleep=sleep)]
    assert isinstance(answers[0][1], GraphError)
    assert "run it again later" in answers[0][1].message


async def _always_refused_for_half_an_hour(keys: Sequence[str]) -> list[GraphError]:
    return [GraphError(429, "tooManyRequests", "Retry after 30 minutes") for _ in keys]
