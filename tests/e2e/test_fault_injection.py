"""The fault-injection run, at a size that fits CI (`python -m devtools.faultrun` for the full one)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_nothing_is_lost_duplicated_or_wrong_under_faults_and_restarts() -> None:
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
    parked = re.search(r"parked=(\d+)", result.stdout)
    assert parked is not None
    assert int(parked.group(1)) > 0, "the run includes unknown learners, which must be visible as parked"
    assert result.returncode == 0
