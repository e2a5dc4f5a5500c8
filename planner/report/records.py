"""Write a simulation's per-request records as CSV (one row per request, workload order)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import IO

from planner.report.files import write_atomic
from planner.sim.metrics import RequestRecords


def write_records_csv(records: RequestRecords, path: str | Path, *, what: str = "--records") -> Path:
    """Write `records` to `path` atomically (planner.report.files.write_atomic).

    Times are simulated seconds (empty when the event never happened); `replica` is -1 for
    requests never dispatched.
    Raises:
        PlannerError: the path is a folder, its folder is missing or not writable, or the write fails.
    """
    columns = records.columns()
    names = list(columns)
    lists = [columns[name].tolist() for name in names]

    def write(fh: IO[str]) -> None:
        writer = csv.writer(fh)
        writer.writerow(names)
        for row in zip(*lists):
            writer.writerow(["" if isinstance(v, float) and math.isnan(v) else (repr(v) if isinstance(v, float) else v)
                             for v in row])

    return write_atomic(path, write, what=what)
