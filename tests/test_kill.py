"""Interrupting `planner optimize` during its capacity phase: Ctrl-C exits 130 with no traceback,
and when the main process is killed outright (SIGKILL) its worker processes die with it.

Linux only: the children of a process are read from /proc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = [sys.executable, "-c", "from planner.cli import main; main()"]


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(predicate, seconds: float) -> bool:  # type: ignore[no-untyped-def]
    """Poll until predicate() holds (a liveness wait, not a timing assertion)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _start_optimize(tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*LAUNCH, "optimize", "--profile", str(ROOT / "traffic_profiles" / "bursty.yaml"), "--workers", "2",
         "--no-report", "--cache-dir", str(tmp_path / "cache")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        # as from a terminal: Ctrl-C not ignored, even when the test runner itself was started in
        # the background (where the shell makes it ignore SIGINT, and children inherit that)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _workers_started(proc: subprocess.Popen[str]) -> list[int]:
    assert _wait_for(lambda: len(_children(proc.pid)) >= 2 or proc.poll() is not None, 60), "no workers started"
    assert proc.poll() is None, proc.communicate()
    return _children(proc.pid)


def test_workers_die_with_a_killed_main_process(tmp_path: Path) -> None:
    proc = _start_optimize(tmp_path)
    try:
        workers = _workers_started(proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _wait_for(lambda: not any(_alive(w) for w in workers), 20), "workers outlived their parent"
        _, err = proc.communicate()
        assert "Traceback" not in err
    finally:
        for pid in [proc.pid, *_children(proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_ctrl_c_exits_130_quietly(tmp_path: Path) -> None:
    proc = _start_optimize(tmp_path)
    try:
        workers = _workers_started(proc)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
        assert _wait_for(lambda: not any(_alive(w) for w in workers), 20)
        # capacities finished before the interrupt are kept, temp files are not
        cache = tmp_path / "cache" / "capacity"
        assert not list(cache.glob(".*.tmp")) if cache.is_dir() else True
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

