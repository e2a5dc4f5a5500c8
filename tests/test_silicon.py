"""A small sample of bench/silicon.py: real vLLM benchmark runs (aiconfigurator-core's
silicon_sample.csv, H200 test rows) simulated as they ran, within a tolerance."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import silicon  # noqa: E402


@pytest.fixture(scope="module")
def rows() -> list:
    rows, skipped = silicon.load_rows()
    assert len(rows) > 400 and "nvfp4 weights (no planner format)" in skipped
    return rows


def _row(rows: list, model: str, gpu: str, tp: int, users: int, isl: int, osl: int):
    found = [r for r in rows if (r.model, r.gpu, r.tp, r.users, r.isl, r.osl) == (model, gpu, tp, users, isl, osl)]
    assert len(found) == 1
    return found[0]


def test_duplicates_are_merged_and_formats_mapped(rows: list) -> None:
    keys = [(r.model, r.gpu, r.tp, r.precision, r.quantization, r.isl, r.osl, r.users) for r in rows]
    assert len(keys) == len(set(keys))
    assert {r.quantization for r in rows if r.model == "gpt-oss-120b"} == {"none"}  # native MXFP4
    assert {r.quantization for r in rows if r.model == "llama-3.1-70b"} == {"fp8"}
    assert {r.gpu for r in rows} == {"h100-sxm", "h200", "b200"}


@pytest.mark.parametrize("case", [("llama-3.1-70b", "h200", 8, 16, 1024, 1024),
                                  ("gpt-oss-120b", "h200", 8, 8, 1024, 1024)])
def test_sampled_rows_tpot_within_tolerance(rows: list, case: tuple) -> None:
    row = silicon.simulate_row(_row(rows, *case), requests_per_user=3)
    assert not row.error
    assert abs(row.tpot_err) <= 0.25, (case, row.pred_tpot_ms, row.tpot_ms)
    assert row.pred_ttft_ms > 0


def test_bound_finds_the_floor_and_the_best_pair(rows: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three H200 rows measured at 10 ms whose floors are 7, 9 and 13 ms, each +2 ms per 20 us of
    layer_fixed_s: the third is 30% too slow at the floor (out of reach), and 20 us puts the other
    two within 20% at the smallest median error (10%)."""
    import numpy as np

    three = [r for r in rows if r.gpu == "h200"][:3]
    lines = (np.array([7.0, 9.0, 13.0]), np.full(3, 1e5), np.zeros(3), np.full(3, 10.0))
    monkeypatch.setattr(silicon, "_linear_tpots", lambda rs, workers, spread: lines)
    table = silicon.bound(three, workers=1)
    assert "| h200 | 3 | 30.0% | 33.3% | 1 | 20.0 us, 0.00 ms | 10.0% | 66.7% |" in table
    assert "| test: H200, each GPU its own best pair | 3 | | | 1 | | | 66.7% |" in table
