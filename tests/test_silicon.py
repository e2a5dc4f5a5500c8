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
