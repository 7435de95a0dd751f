"""The timer trigger as the host runs it: once per app (a singleton listener holding a blob lease),
with a schedule monitor that records each run in a blob, so that a run missed while no instance was up
fires once (past due) when one starts again.

Sources:
- Azure/azure-webjobs-sdk-extensions src/WebJobs.Extensions/Extensions/Timers/Listener/TimerListener.cs:
  the listener is `[Singleton(Mode = SingletonMode.Listener)]`; `StartAsync` reads the status, asks
  `CheckPastDueAsync` and, past due, invokes at once with IsPastDue (or RunOnStartup), else waits for
  `Next`; after each invocation it records Last/Next/LastUpdated (Next from the invocation time, or
  from the scheduled time when the timer fired a little early).
- .../Timers/Scheduling/ScheduleMonitor.cs (`CheckPastDueAsync`, ported below) and
  src/WebJobs.Extensions.Timers.Storage/StorageScheduleMonitor.cs: the status is the blob
  `timers/{hostId}/{timerName}/status` in the host's container, JSON {Last, Next, LastUpdated}.
- .../Timers/Scheduling/TimerSchedule.cs (`ShouldDisableScheduleMonitor`): no monitor for a schedule
  that fires more than once a minute; function.json `useMonitor` (default true) otherwise
  (Azure/azure-functions-host src/WebJobs.Script/Binding/CoreExtensionsScriptBindingProvider.cs).
- Azure/azure-webjobs-sdk src/Microsoft.Azure.WebJobs.Host/Singleton/SingletonListener.cs,
  SingletonManager.cs, SingletonOptions.cs and src/Microsoft.Azure.WebJobs.Host.Storage/Singleton/
  BlobLeaseDistributedLockManager.cs: the lock is a lease on the blob `locks/{hostId}/{lockId}` with
  lockId `{function full name}.Listener`, in the host storage's container `azure-webjobs-hosts`
  (HostContainerNames.Hosts); the lease lasts listenerLockPeriod (default 60 s, 15-60), is renewed at
  half-time; an instance without it tries again every listenerLockRecoveryPollingInterval (default 1
  minute) and starts its listener once it has it; a stopping listener releases it.
- The timer name and the function's full name are `Host.Functions.<name>` (Azure/azure-functions-host
  src/WebJobs.Script/Host/ScriptHost.cs: GeneratedTypeNamespace "Host", GeneratedTypeName "Functions";
  TimerTriggerBinding names the timer `{declaring type}.{method}`).

The real host works in the machine's local time zone (UTC on Azure unless WEBSITE_TIME_ZONE); the dev
host always uses UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError

from devtools.devhost.worker import Worker

if TYPE_CHECKING:
    from devtools.devhost.host import FunctionSpec

log = logging.getLogger("devhost")

HOSTS_CONTAINER = "azure-webjobs-hosts"
#: `default(DateTime)`: "never" in a schedule status.
NEVER = datetime(1, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SingletonOptions:
    """host.json `singleton`, with SingletonOptions' defaults."""

    listener_lock_period: float = 60.0
    listener_lock_recovery_polling_interval: float = 60.0


@dataclass(frozen=True)
class ScheduleStatus:
    last: datetime
    next: datetime
    last_updated: datetime

    def to_json(self) -> str:
        return json.dumps(
            {"Last": _iso(self.last), "Next": _iso(self.next), "LastUpdated": _iso(self.last_updated)}
        )

    @classmethod
    def from_json(cls, text: str) -> ScheduleStatus:
        data = json.loads(text)
        return cls(_parse(data["Last"]), _parse(data["Next"]), _parse(data["LastUpdated"]))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Schedule:
    """An NCRONTAB schedule (seconds first, as the host reads it)."""

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        self.expression = expression
        self.fields = fields
        # croniter puts the seconds field last; NCRONTAB puts it first.
        self._croniter = " ".join(fields[1:] + fields[:1]) if len(fields) == 6 else " ".join(fields)

    def next_after(self, moment: datetime) -> datetime:
        from croniter import croniter

        following: datetime = croniter(self._croniter, moment).get_next(datetime)
        return following

    def more_than_once_a_minute(self, now: datetime) -> bool:
        """TimerSchedule.ShouldDisableScheduleMonitor."""
        if len(self.fields) != 6 or any(f != "*" for f in self.fields[1:]):
            return False
        first = self.next_after(now)
        return self.next_after(first) <= now + timedelta(minutes=1)


class TimerStore:
    """The host storage's blobs for one host id: listener locks and schedule statuses."""

    def __init__(self, blobs: Any, host_id: str) -> None:
        self.blobs = blobs
        self.host_id = host_id
        self.container = blobs.get_container_client(HOSTS_CONTAINER)

    async def _ensure_container(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            await self.container.create_container()

    async def try_lock(self, lock_id: str, period: float) -> Any | None:
        """BlobLeaseDistributedLockManager.TryAcquireLeaseAsync: a lease on locks/{hostId}/{lockId}, or
        None when another instance holds it."""
        blob = self.container.get_blob_client(f"locks/{self.host_id}/{lock_id}")
        try:
            properties = await blob.get_blob_properties()
            if properties.lease.state not in (None, "available", "expired", "broken"):
                return None
        except ResourceNotFoundError:
            await self._ensure_container()
            with contextlib.suppress(ResourceExistsError, HttpResponseError):
                await blob.upload_blob(b"", overwrite=False)
        try:
            return await blob.acquire_lease(lease_duration=int(period))
        except HttpResponseError as exc:
            if exc.status_code == 409:
                return None
            raise

    async def status(self, timer_name: str) -> ScheduleStatus | None:
        blob = self.container.get_blob_client(f"timers/{self.host_id}/{timer_name}/status")
        try:
            content = await (await blob.download_blob()).readall()
        except ResourceNotFoundError:
            return None
        return ScheduleStatus.from_json(content.decode("utf-8"))

    async def record(self, timer_name: str, status: ScheduleStatus) -> None:
        """StorageScheduleMonitor.UpdateStatusAsync: best effort."""
        blob = self.container.get_blob_client(f"timers/{self.host_id}/{timer_name}/status")
        try:
            await self._ensure_container()
            await blob.upload_blob(status.to_json().encode("utf-8"), overwrite=True)
        except AzureError as exc:
            log.error("Function '%s' failed to update the timer trigger status. (%s)", timer_name, exc)

    async def check_past_due(
        self, timer_name: str, now: datetime, schedule: Schedule, status: ScheduleStatus | None
    ) -> tuple[timedelta, ScheduleStatus]:
        """ScheduleMonitor.CheckPastDueAsync: how far past due the timer is, and its status."""
        if status is None:
            status = ScheduleStatus(NEVER, schedule.next_after(now), now)
            await self.record(timer_name, status)
        else:
            if status.last != NEVER:
                expected, last_updated = schedule.next_after(status.last), status.last
            elif status.last_updated != NEVER:
                expected, last_updated = schedule.next_after(status.last_updated), status.last_updated
            else:
                expected, last_updated = schedule.next_after(now), now
            if status.next != expected:  # the schedule changed since: recompute, never past due for it
                if now > expected:
                    expected, last_updated = schedule.next_after(now), now
                status = ScheduleStatus(NEVER, expected, last_updated)
                await self.record(timer_name, status)
        return (now - status.next if now > status.next else timedelta(0)), status


class TimerRunner:
    """A timer-triggered function: a singleton listener with a schedule monitor when a store is given
    (the dev host always gives one); without a store (unit tests), the schedule alone, in memory."""

    def __init__(
        self,
        spec: FunctionSpec,
        worker: Worker | None = None,
        *,
        store: TimerStore | None = None,
        singleton: SingletonOptions | None = None,
    ) -> None:
        self.spec = spec
        self.worker = worker or Worker()
        self.store = store
        self.singleton = singleton or SingletonOptions()
        self.schedule = Schedule(spec.trigger["schedule"])
        self.timer_name = f"Host.Functions.{spec.name}"
        self.runs = 0
        self.listening = False
        now = datetime.now(UTC)
        use_monitor = bool(spec.trigger.get("useMonitor", True))
        self.monitored = store is not None and use_monitor and not self.schedule.more_than_once_a_minute(now)

    async def run(self, stop: asyncio.Event) -> None:
        log.info("timer  %-16s %s", self.spec.name, self.spec.trigger["schedule"])
        if self.store is None:
            await self._listen(stop)
            return
        lease = await self._acquire(stop)
        if lease is None:
            return
        renewing = asyncio.create_task(self._renew(lease))
        try:
            await self._listen(stop)
        finally:
            renewing.cancel()
            with contextlib.suppress(AzureError):
                await lease.release()

    async def _acquire(self, stop: asyncio.Event) -> Any | None:
        """SingletonListener.StartAsync and its recovery timer: the lock, or None once stopping."""
        assert self.store is not None
        lock_id = f"{self.timer_name}.Listener"
        while not stop.is_set():
            try:
                lease = await self.store.try_lock(lock_id, self.singleton.listener_lock_period)
            except AzureError as exc:
                log.warning("timer %s: lock attempt failed (%s)", self.spec.name, type(exc).__name__)
                lease = None
            if lease is not None:
                log.debug("Singleton lock acquired (%s/%s)", self.store.host_id, lock_id)
                return lease
            log.debug("Unable to acquire Singleton lock (%s/%s).", self.store.host_id, lock_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.singleton.listener_lock_recovery_polling_interval)
        return None

    async def _renew(self, lease: Any) -> None:
        while True:
            await asyncio.sleep(self.singleton.listener_lock_period / 2)
            try:
                await lease.renew()
            except AzureError as exc:
                log.error("Singleton lock renewal failed for %s (%s)", self.timer_name, exc)

    async def _listen(self, stop: asyncio.Event) -> None:
        """TimerListener: StartAsync, then one invocation per occurrence."""
        self.listening = True
        now = datetime.now(UTC)
        status: ScheduleStatus | None = None
        past_due = timedelta(0)
        if self.monitored:
            assert self.store is not None
            status = await self.store.status(self.timer_name)
            past_due, status = await self.store.check_past_due(self.timer_name, now, self.schedule, status)
        if status is None:
            status = ScheduleStatus(NEVER, self.schedule.next_after(now), NEVER)
        startup = (
            "IsPastDue" if past_due else ("RunOnStartup" if self.spec.trigger.get("runOnStartup") else None)
        )
        while not stop.is_set():
            delay = 0.0 if startup else (status.next - datetime.now(UTC)).total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, delay))
                return
            status = await self._fire(status, startup)
            startup = None

    async def _fire(self, status: ScheduleStatus, startup: str | None) -> ScheduleStatus:
        invoked_at = datetime.now(UTC)
        if startup == "IsPastDue":
            log.info("Timer is past due. (%s)", self.spec.name)
        try:
            await self.worker.invoke(
                self.spec.name,
                self.spec.function,
                {self.spec.trigger["name"]: _Timer(past_due=startup == "IsPastDue")},
                has_return=False,
            )
            self.runs += 1
        except Exception:
            log.exception("timer function %s raised", self.spec.name)
        adjusted = invoked_at
        if startup is None and status.next > invoked_at:  # fired a little early
            adjusted = status.next
        status = replace(
            status, last=adjusted, next=self.schedule.next_after(adjusted), last_updated=adjusted
        )
        if self.monitored:
            assert self.store is not None
            await self.store.record(self.timer_name, status)
        return status


class _Timer:
    """What a timer-triggered function receives (azure.functions.TimerRequest's surface)."""

    def __init__(self, past_due: bool) -> None:
        self.past_due = past_due
