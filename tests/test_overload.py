"""An overloaded run (arrivals faster than one replica serves them): the backlog outlives the
horizon, so the replica is billed until it has drained, the output says so, requests are conserved
and the KV-usage series never exceeds 100%.

The issue's figures (100 and 500 req/s for 600 s on one H100) are in docs/simulator.md; the tests
use shorter horizons with the same overload so they stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_cases import assert_ok, run_cli

PROFILE = """
name: overload
model: {{name: llama-3.1-8b, precision: bf16}}
serving: {{max_model_len: 8192}}
traffic:
  arrivals: {{process: poisson, rate_per_s: {rate}}}
  sizes:
    distribution: lognormal
    prompt_tokens: {{median: 1020, p90: 2734}}
    output_tokens: {{median: 129, p90: 424, max_tokens: 1000}}
  horizon_seconds: {horizon}
slo: {{ttft_seconds: 2.0, tpot_seconds: 0.1}}
candidates: {{gpus: [h100-sxm]}}
"""


def _run(tmp_path: Path, rate: float, horizon: float, *extra: str) -> tuple[dict, str]:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE.format(rate=rate, horizon=horizon))
    res = run_cli("simulate", "--profile", str(path), "--gpu", "h100-sxm", "--json", *extra)
    assert_ok(res)
    text = run_cli("simulate", "--profile", str(path), "--gpu", "h100-sxm", *extra)
    assert_ok(text)
    return json.loads(res.out), text.out


@pytest.mark.parametrize("rate, horizon", [(100, 60), (500, 12)])
def test_overloaded_run_is_billed_through_its_drain(tmp_path: Path, rate: float, horizon: float) -> None:
    data, text = _run(tmp_path, rate, horizon)
    sim_s = data["simulated_seconds"]
    assert sim_s > 2 * horizon  # the replica works long after the last arrival
    assert data["overloaded"] is True
    assert data["drain_seconds"] == pytest.approx(sim_s - horizon)
    assert data["queued_at_horizon"] > 0
    # billed until the backlog is served: every busy second is a billed second
    assert data["billed_gpu_seconds"] >= sim_s
    assert data["busy_gpu_seconds"] <= data["billed_gpu_seconds"]
    assert data["cost"]["month_sustainable"] is False
    # request conservation
    assert data["requests"] == data["completed"] + data["rejected"] + data["unfinished"]
    # time-weighted KV use per bin is a fraction of the blocks
    assert max(data["series"]["kv_cache_usage"]) <= 1.0 + 1e-9
    assert max(data["series"]["batch_size"]) <= data["max_num_seqs"] + 1e-9
    # the text says so, and does not present the month as sustainable
    assert "overloaded" in text and "drain" in text
    assert "per month" not in text.split("overloaded", 1)[0].splitlines()[-1]


def test_run_that_keeps_up_is_not_overloaded(tmp_path: Path) -> None:
    data, text = _run(tmp_path, 2, 60)
    assert data["overloaded"] is False and data["queued_at_horizon"] == 0
    assert data["requests"] == data["completed"] + data["rejected"] + data["unfinished"]
    assert data["cost"]["month_sustainable"] is True
    assert data["billed_gpu_seconds"] == pytest.approx(60.0)  # a fixed pod: the horizon, as before
    assert "overloaded" not in text
