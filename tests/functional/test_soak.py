"""The soak bench, CI-sized: a real server under mixed traffic keeps answering and flat.

``python -m bench.soak`` for one minute per backend (the documented runs last 30). Only
correctness is checked here: no answer other than the intended ones, the greedy client
refused, RSS within 10% of its level after the warm-up, one access-log line per request.
Its latency figures are printed, never asserted.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.databases import ADMIN_URL

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SOAK_TIMEOUT = 600


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_short_soak_passes(backend: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--minutes",
            "1",
            "--backend",
            backend,
            "--postgres-url",
            ADMIN_URL,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SOAK_TIMEOUT,
        check=False,
    )
    output = done.stdout + done.stderr
    print(output)  # the figures, for whoever reads the CI log
    assert done.returncode == 0, output
    assert "unintended answers: 0" in output
    assert re.search(r"intended 429s \(greedy client, \d+/min\): [1-9]", output), output
    assert re.search(r"^min +1 \| token .* p99 .* rss", output, re.MULTILINE), output
    assert "server log: ok" in output
    assert output.rstrip().endswith("PASS")
