"""Run the Redis cases of the fault suite and print their figures as one table.

    .venv/bin/python -m bench.faults.run [pytest arguments; default: the Redis cases]

Runs tests/faults/test_redis_faults.py and test_sentinel_failover.py (each case breaks a real
Redis or server process under load) with ``$FAULT_FIGURES_FILE`` set, so that each case appends
its figures there, then prints them: per fault, the webhooks acknowledged and lost, the jobs
duplicated, the requests sent during the fault and not answered 2xx (by kind and status;
``none``: no answer), the deliveries spooled, the longest request sent during the fault, the
seconds from the fault's end to /ready 200, and each case's own figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import REPO_ROOT, format_table, machine_summary

FIGURES_FILE = "FAULT_FIGURES_FILE"
REDIS_CASES = ["tests/faults/test_redis_faults.py", "tests/faults/test_sentinel_failover.py"]


def main() -> int:
    """Run the suite, print the table; the suite's exit code."""
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as folder:
        figures = Path(folder) / "figures.jsonl"
        env = dict(os.environ) | {FIGURES_FILE: str(figures)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist",
                   *(sys.argv[1:] or REDIS_CASES)]  # fmt: skip
        code = subprocess.run(command, cwd=REPO_ROOT, env=env, check=False).returncode
        rows = [json.loads(line) for line in figures.read_text().splitlines()] if (
            figures.exists()) else []  # fmt: skip
    out = sys.stdout
    out.write("\nmachine: " + ", ".join(f"{k}: {v}" for k, v in machine_summary().items()) + "\n")
    headers = ["fault", "acked", "lost", "duplicated", "not 2xx during fault", "spooled",
               "longest s", "to /ready s"]  # fmt: skip
    table = [[r["fault"], r["acknowledged"], r["lost"], r["duplicated"],
              ", ".join(f"{k}: {v}" for k, v in sorted(r["refused"].items())) or "-",
              r["spooled"], r["longest_s"], r["ready_after_s"]] for r in rows]  # fmt: skip
    out.write(format_table(headers, table) + "\n\n")
    for row in rows:
        out.write(f"{row['fault']}: " + ", ".join(f"{k} {v}" for k, v in row["extra"].items()))
        out.write("\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
