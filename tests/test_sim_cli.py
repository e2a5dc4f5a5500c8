"""`planner simulate` end to end on a small profile (real timing model, memory and traffic)."""

from __future__ import annotations

import csv
import json
import os
import stat

import pytest
from typer.testing import CliRunner

from planner.cli import app

PROFILE = """
name: tiny
model:
  name: llama-3.1-8b
  precision: bf16
serving:
  max_model_len: 4096
traffic:
  arrivals: {process: poisson, rate_per_s: 5.0}
  sizes: {distribution: fixed, prompt_tokens: 500, output_tokens: 60}
  horizon_seconds: 60
slo: {ttft_seconds: 1.0, tpot_seconds: 0.05, attainment: 0.9}
candidates: {gpus: [h100-sxm]}
"""


@pytest.fixture()
def profile(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(PROFILE)
    return path


def test_json_output_has_the_promised_fields(profile, tmp_path):
    records = tmp_path / "out.csv"
    res = CliRunner().invoke(app, ["simulate", "--profile", str(profile), "--gpu", "h100-sxm", "--replicas", "2",
                                   "--json", "--records", str(records)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    for key in ("requests", "completed", "rejected", "preemptions", "slo_attainment", "simulated_seconds",
                "wall_seconds"):
        assert key in data
    for key in ("ttft_seconds", "tpot_seconds", "e2e_seconds"):
        assert set(data[key]) >= {"mean", "p50", "p90", "p95", "p99"}
    assert set(data["throughput"]) >= {"requests_per_second", "output_tokens_per_second"}
    assert data["completed"] == data["requests"] > 200
    # 500-token prefill on an H100 takes tens of ms, not seconds; decode steps of an 8B model ~ 7-15 ms
    assert 0.01 < data["ttft_seconds"]["p50"] < 0.5
    assert 0.004 < data["tpot_seconds"]["p50"] < 0.05
    with records.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == data["requests"]
    assert set(rows[0]) >= {"arrival_at", "admitted_at", "first_token_at", "finished_at", "replica",
                            "preemptions", "rejected_reason"}
    assert {r["replica"] for r in rows} == {"0", "1"}


def test_text_output_and_same_result_for_the_same_seed(profile):
    runner = CliRunner()
    args = ["simulate", "--profile", str(profile), "--gpu", "h100-sxm", "--seed", "3"]
    a = runner.invoke(app, args)
    assert a.exit_code == 0, a.output
    assert "TTFT" in a.stdout and "SLO" in a.stdout
    j1 = json.loads(runner.invoke(app, args + ["--json"]).stdout)
    j2 = json.loads(runner.invoke(app, args + ["--json"]).stdout)
    j1.pop("wall_seconds"), j2.pop("wall_seconds"), j1.pop("requests_per_wall_second"), j2.pop("requests_per_wall_second")
    assert j1 == j2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--gpu", "no-such-gpu"], "no-such-gpu"),
        (["--gpu", "h100-sxm", "--router", "random"], "router"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(profile, extra, message):
    res = CliRunner().invoke(app, ["simulate", "--profile", str(profile)] + extra)
    assert res.exit_code == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in res.output


def test_records_into_a_missing_folder_writes_nothing(profile, tmp_path):
    target = tmp_path / "missing" / "out.csv"
    res = CliRunner().invoke(app, ["simulate", "--profile", str(profile), "--gpu", "h100-sxm", "--records", str(target)])
    assert res.exit_code == 2
    assert not target.parent.exists()


@pytest.fixture()
def no_simulation(monkeypatch):
    """Fail the test if a simulation starts: bad output paths must be refused before it."""
    def refuse(*args, **kwargs):
        raise AssertionError("simulated before checking the output path")

    monkeypatch.setattr("planner.sim.simulate", refuse)
    monkeypatch.setattr("planner.compare.simulate_billed", refuse)


@pytest.mark.parametrize(
    "target, message",
    [
        ("{tmp}", "is a folder"),          # the folder itself (the temp file once landed in its parent)
        ("{tmp}/d.csv", "is a folder"),    # a folder named like a file
        ("", "the path is empty"),
        ("{tmp}/missing/out.csv", "does not exist"),
        ("{tmp}/f/out.csv", "is not a folder"),  # a file where the folder should be
    ],
)
def test_bad_records_path_is_one_line_exit_2_before_simulating(profile, tmp_path, no_simulation, target, message):
    work = tmp_path / "work"
    (work / "d.csv").mkdir(parents=True)
    (work / "f").write_text("x")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    res = CliRunner().invoke(app, ["simulate", "--profile", str(profile), "--gpu", "h100-sxm",
                                   "--records", target.format(tmp=work)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --records") and message in lines[0], res.stderr
    assert "Traceback" not in res.output and res.stdout == ""
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written anywhere


def test_records_file_has_normal_permissions(profile, tmp_path):
    old = os.umask(0o022)
    try:
        res = CliRunner().invoke(app, ["simulate", "--profile", str(profile), "--gpu", "h100-sxm",
                                       "--records", str(tmp_path / "r.csv")])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert stat.S_IMODE((tmp_path / "r.csv").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "tiny.yaml"]  # no temporary left


def test_text_names_in_flight_time_and_batch_fullness(profile):
    res = CliRunner().invoke(app, ["simulate", "--profile", str(profile), "--gpu", "h100-sxm", "--replicas", "2"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "utilization" not in out and "busy fraction" not in out and "idle spend" not in out
    assert "with requests in flight" in out and "spend with no request in flight" in out
    batch = next(line for line in out.splitlines() if line.startswith("batch size"))
    assert "of max_num_seqs" in batch and "% full" in batch
    data = json.loads(CliRunner().invoke(app, ["simulate", "--profile", str(profile), "--gpu", "h100-sxm",
                                               "--replicas", "2", "--json"]).stdout)
    assert data["max_num_seqs"] >= 1 and f"{data['batch_size_mean']:,.1f}" in batch
    assert f"of max_num_seqs {data['max_num_seqs']:,}" in batch
