"""Write a simulation's per-request records as CSV (one row per request, workload order)."""

from __future__ import annotations

import csv
import math
import os
import tempfile
from pathlib import Path

from planner.errors import PlannerError
from planner.sim.metrics import RequestRecords


def write_records_csv(records: RequestRecords, path: str | Path) -> Path:
    """Write `records` to `path` atomically (a temporary file renamed into place).

    Times are simulated seconds (empty when the event never happened); `replica` is -1 for
    requests never dispatched.
    Raises:
        PlannerError: the folder does not exist or is not writable.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise PlannerError(f"cannot write {path}: folder {folder} does not exist; create it or pick another path")
    columns = records.columns()
    names = list(columns)
    lists = [columns[name].tolist() for name in names]
    try:
        fd, tmp = tempfile.mkstemp(prefix=".records-", suffix=".csv", dir=folder)
    except OSError as err:
        raise PlannerError(f"cannot write {path}: {err.strerror}; pick a writable folder") from None
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(names)
            for row in zip(*lists):
                writer.writerow(["" if isinstance(v, float) and math.isnan(v) else (repr(v) if isinstance(v, float) else v)
                                 for v in row])
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
