"""Golden test: `planner optimize --profile traffic_profiles/bursty.yaml --json` (seed 0).

Pins the whole JSON answer of the main command (timing fields dropped) so that refactors which
should not change a number cannot change one unnoticed. A change that is meant to move the figures
(a new step-time model, an optimizer change) regenerates the file and says why in its commit:

    PLANNER_REGEN_GOLDEN=1 .venv/bin/python -m pytest -q tests/test_golden_optimize.py

See tests/golden/README.md.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from planner.cli import app

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "optimize_bursty_seed0.json"
# Wall-clock measurements differ on every run and machine; a capacity's cache_key hashes the source
# code (any edit changes it). Neither is a figure of the plan.
TIMING_KEYS = {"solve_seconds", "simulate_seconds", "capacity_seconds", "wall_seconds", "seconds", "cache_key"}
REL_TOL = 1e-9  # float sums may round differently across platforms; anything larger is a change


def _drop_timing(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _drop_timing(v) for k, v in x.items() if k not in TIMING_KEYS}
    if isinstance(x, list):
        return [_drop_timing(v) for v in x]
    return x


def _diff(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Paths where the two JSON values differ (floats within REL_TOL count as equal)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{path}.{k}: missing" for k in expected if k not in actual]
        out += [f"{path}.{k}: unexpected" for k in actual if k not in expected]
        for k in expected.keys() & actual.keys():
            out += _diff(expected[k], actual[k], f"{path}.{k}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: length {len(expected)} != {len(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual)) for d in _diff(e, a, f"{path}[{i}]")]
    if (isinstance(expected, float) or isinstance(actual, float)) and not isinstance(expected, bool) \
            and isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return [] if math.isclose(expected, actual, rel_tol=REL_TOL, abs_tol=1e-12) else \
            [f"{path}: {expected!r} != {actual!r}"]
    return [] if expected == actual else [f"{path}: {expected!r} != {actual!r}"]


def test_optimize_bursty_matches_the_golden_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # any stray report/cache file lands in the temporary folder
    # The golden file pins full precision: take the JSON before emit_json rounds its floats.
    monkeypatch.setattr("planner.cli._app.round_floats", lambda value, digits=7: value)
    res = CliRunner().invoke(app, [
        "optimize", "--profile", str(ROOT / "traffic_profiles" / "bursty.yaml"), "--json",
        "--seed", "0", "--no-report", "--no-cache", "--workers", "1"])
    assert res.exit_code == 0, res.output
    actual = _drop_timing(json.loads(res.stdout))
    if os.environ.get("PLANNER_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(actual, indent=2, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    diffs = _diff(expected, actual)
    assert not diffs, "the optimize answer changed (regenerate only on purpose, see the module docstring):\n" \
        + "\n".join(diffs[:40])


def test_the_comparison_sees_a_change():
    """The comparison itself can fail: a moved float, a missing key, a changed string."""
    base = {"a": 1.0, "b": [{"c": "x"}], "slot_seconds": 3600.0}
    assert not _diff(base, {"a": 1.0 + 1e-13, "b": [{"c": "x"}], "slot_seconds": 3600.0})
    assert _diff(base, {"a": 1.001, "b": [{"c": "x"}], "slot_seconds": 3600.0})
    assert _diff(base, {"a": 1.0, "b": [{"c": "y"}], "slot_seconds": 3600.0})
    assert _diff(base, {"a": 1.0, "b": [], "slot_seconds": 3600.0})
    assert _diff(base, {"a": 1.0, "b": [{"c": "x"}]})
    assert _drop_timing({"wall_seconds": 1.0, "rounds": [{"solve_seconds": 2, "round": 1}]}) == {"rounds": [{"round": 1}]}
