"""The fault-injection run, at a size that fits CI (`python -m devtools.faultrun` for the full one):
two dev host instances draining one queue, one of them killed mid-run.

The leases are short here so that the run waits little for the killed instance: its messages come
back after 10 s (DEVHOST_MESSAGE_LEASE_SECONDS), and an activity it was creating is free again after
10 s (BRIDGE_CLAIM_LEASE_SECONDS; the app's default is 60)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_nothing_is_lost_duplicated_or_wrong_when_an_instance_is_killed_under_faults() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.faultrun",
            "--events",
            "300",
            "--learners",
            "30",
            "--courses",
            "8",
            "--seed",
            "7",
            "--instances",
            "2",
            "--lease",
            "10",
            "--claim-lease",
            "10",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    print(result.stdout)
    summary = re.search(r"missing=(\d+) duplicated=(\d+) wrong=(\d+)", result.stdout)
    assert summary is not None, result.stdout + result.stderr[-3000:]
    assert summary.groups() == ("0", "0", "0"), result.stdout
    ledger = re.search(r"unaccounted=(\d+) queued=(\d+) poisoned=(\d+)", result.stdout)
    assert ledger is not None, result.stdout
    assert ledger.groups() == ("0", "0", "0"), (
        "every acknowledged event applied or dead-lettered, queues empty"
    )
    parked = re.search(r"parked=(\d+)", result.stdout)
    assert parked is not None
    assert int(parked.group(1)) > 0, "the run includes unknown learners, which must be visible as parked"
    spread = re.search(r"posts per instance=\{0: (\d+), 1: (\d+)\}", result.stdout)
    assert spread is not None, "deliveries reach both instances"
    killed = re.search(r"SIGKILL at \d+ s, (\d+) messages on the queue", result.stdout)
    assert killed is not None
    assert int(killed.group(1)) > 0, "the instance is killed while there is work in flight"
    assert result.returncode == 0
