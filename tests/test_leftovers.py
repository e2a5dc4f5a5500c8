"""Temporary files of dead runs are cleaned up; a concurrent (live) run's are left alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

from planner.report import files
from planner.resources import STALE_AFTER_S, remove_stale_temps, temp_prefix

DEAD_PID = 2**22 + 12345  # above Linux's default pid_max (4,194,304): never a live process


def test_temp_names_carry_the_pid() -> None:
    assert temp_prefix("rep") == f".rep.{os.getpid()}."


def test_dead_runs_leftovers_go_live_runs_stay(tmp_path: Path) -> None:
    dead = tmp_path / f".rep.{DEAD_PID}.abcd1234"
    dead.mkdir()
    (dead / "report.md").write_text("half")
    live = tmp_path / f".rep.{os.getppid()}.efgh5678"  # the test runner's parent: alive
    live.mkdir()
    dead_file = tmp_path / f".plan.json.{DEAD_PID}.x1y2z3.tmp"
    dead_file.write_text("{")
    files.write_folder(tmp_path / "rep", lambda d: (d / "report.md").write_text("whole"))
    files.write_text(tmp_path / "plan.json", "{}")
    assert not dead.exists() and not dead_file.exists()
    assert live.is_dir()
    assert (tmp_path / "rep" / "report.md").read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "rep", "plan.json"])


def test_old_leftovers_of_earlier_versions_go(tmp_path: Path) -> None:
    old = tmp_path / ".rep.k2j4h5g6"
    old.mkdir()
    recent = tmp_path / ".rep.q1w2e3r4"
    recent.mkdir()
    unrelated = tmp_path / ".rep.notes"
    unrelated.write_text("mine")
    past = time.time() - STALE_AFTER_S - 60
    os.utime(old, (past, past))
    os.utime(unrelated, (past, past))
    assert remove_stale_temps(tmp_path, "rep") == 1
    assert not old.exists() and recent.exists() and unrelated.exists()


def test_a_rewritten_report_keeps_no_earlier_deploy_files(tmp_path: Path) -> None:
    """A report written again into its folder replaces deploy/ whole (no stale plan's script), and
    leaves the user's other files beside the report alone."""

    def report(script: str):
        def fill(d: Path) -> None:
            (d / "deploy").mkdir()
            (d / "deploy" / script).write_text("#!/bin/sh\n")
            (d / "report.md").write_text(script)
        return fill

    rep = tmp_path / "rep"
    files.write_folder(rep, report("h100-sxm-tp1-pod.sh"), replace_dirs=("deploy",))
    (rep / "notes.txt").write_text("mine")
    files.write_folder(rep, report("h100-pcie-tp1-pod.sh"), replace_dirs=("deploy",))
    assert sorted(p.name for p in (rep / "deploy").iterdir()) == ["h100-pcie-tp1-pod.sh"]
    assert (rep / "notes.txt").read_text() == "mine"
