"""`planner optimize` on the command line: JSON contract, report folder, errors, one real run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import plan_doubles as D
from planner.cli import app
from planner.optimize.loop import plan as real_plan
from planner.traffic import Workload

runner = CliRunner()

JSON_KEYS = {"plan", "cost_usd", "cost_per_month_usd", "slo_attainment", "verified", "rounds",
             "alternatives", "solve_seconds", "wall_seconds", "flex_workers"}


@pytest.fixture()
def fake_plan(monkeypatch):
    """Replace the optimizer's world with the doubles, keep the CLI and report real."""
    calls = []

    def fake(profile, **kw):
        calls.append(kw)
        t = np.arange(2000) * 1.5
        wl = Workload(t, np.full(len(t), 500), np.full(len(t), 100), 3600.0)
        p = D.profile({"process": "poisson", "rate_per_s": 1.0})
        return real_plan(p, backend=D.backend(), use_cache=False, workload=wl, seed=kw.get("seed"))

    monkeypatch.setattr("planner.optimize.loop.plan", fake)
    return calls


def _profile_file(tmp_path: Path) -> Path:
    src = Path(__file__).resolve().parent.parent / "traffic_profiles" / "bursty.yaml"
    dst = tmp_path / "bursty.yaml"
    dst.write_text(src.read_text())
    return dst


def test_json_is_the_only_stdout_and_has_the_contract(fake_plan, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["optimize", "--profile", str(_profile_file(tmp_path)), "--json", "--seed", "3", "--workers", "2"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert JSON_KEYS <= set(data)
    assert {"gpu", "tensor_parallel_size", "billing", "count"} <= set(data["plan"][0])
    assert {"cost_per_month_usd", "usd_per_million_output_tokens", "slo_attainment"} <= set(data["alternatives"][0])
    assert fake_plan[0]["seed"] == 3 and fake_plan[0]["workers"] == 2
    # Default report folder: reports/<profile>-<date>/ under the working directory.
    folders = list((tmp_path / "reports").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("bursty-")
    assert (folders[0] / "report.html").is_file()


def test_no_report_and_report_dir(fake_plan, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prof = _profile_file(tmp_path)
    res = runner.invoke(app, ["optimize", "--profile", str(prof), "--no-report"])
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "reports").exists()
    assert "plan" in res.stdout and "per month" in res.stdout
    res = runner.invoke(app, ["optimize", "--profile", str(prof), "--report", str(tmp_path / "out")])
    assert res.exit_code == 0 and (tmp_path / "out" / "plan.json").is_file()


def test_cache_options_reach_the_optimizer(fake_plan, tmp_path):
    prof = _profile_file(tmp_path)
    runner.invoke(app, ["optimize", "--profile", str(prof), "--no-report", "--no-cache", "--cache-dir", str(tmp_path / "c")])
    assert fake_plan[-1]["use_cache"] is False and fake_plan[-1]["cache_dir"] == tmp_path / "c"


def test_bad_profile_is_one_line_per_error_exit_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: llama-3.1-8b}\n")
    res = runner.invoke(app, ["optimize", "--profile", str(bad), "--no-report"])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert [line.split(": ")[-2] for line in lines] == ["traffic", "slo", "candidates"]  # every error at once
    assert all(line.startswith("error: bad.yaml: ") for line in lines) and "Traceback" not in res.output


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("h100-sxm", "h100-sxx", "candidates.gpus: unknown GPU 'h100-sxx': did you mean h100-sxm"),
        ("name: llama-3.1-8b", "name: llama-9", "model.name: unknown model 'llama-9'"),
    ],
)
def test_unknown_gpu_or_model_is_one_line_exit_2(tmp_path, old, new, expected):
    prof = _profile_file(tmp_path)
    assert old in prof.read_text()
    prof.write_text(prof.read_text().replace(old, new))
    res = runner.invoke(app, ["optimize", "--profile", str(prof), "--no-report", "--no-cache"])
    assert res.exit_code == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and lines[0].count(new.split()[-1]) == 1


def test_cache_dir_under_a_file_is_one_line_exit_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = runner.invoke(app, ["optimize", "--profile", str(_profile_file(tmp_path)), "--report", str(tmp_path / "r"),
                              "--cache-dir", str(blocker / "cache")])
    assert res.exit_code == 2 and res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "is a file, not a folder" in lines[0] and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_infeasible_slo_is_explained(tmp_path):
    prof = tmp_path / "tight.yaml"
    prof.write_text(textwrap.dedent("""
        model: {name: llama-3.1-8b}
        serving: {max_model_len: 4096}
        traffic:
          arrivals: {process: poisson, rate_per_s: 1}
          sizes: {distribution: fixed, prompt_tokens: 2000, output_tokens: 50}
          horizon_seconds: 300
        slo: {ttft_seconds: 0.001, tpot_seconds: 0.1}
        candidates: {gpus: [l4], tensor_parallel_sizes: [1]}
    """))
    res = runner.invoke(app, ["optimize", "--profile", str(prof), "--no-report", "--no-cache"])
    assert res.exit_code == 2
    line = res.stderr.strip()
    assert "relax" in line and "quantize" in line and len(line.splitlines()) == 1


def test_real_small_run_end_to_end(tmp_path):
    """The whole pipeline on the real simulator: a small steady profile, two GPUs, pods only."""
    prof = tmp_path / "small.yaml"
    prof.write_text(textwrap.dedent("""
        name: small
        model: {name: llama-3.1-8b}
        serving: {max_model_len: 4096}
        traffic:
          arrivals: {process: poisson, rate_per_s: 3}
          sizes: {distribution: fixed, prompt_tokens: 500, output_tokens: 100}
          horizon_seconds: 300
        slo: {ttft_seconds: 2.0, tpot_seconds: 0.1}
        candidates: {gpus: [h100-sxm, l40s], tensor_parallel_sizes: [1], billing: [pod]}
    """))
    res = runner.invoke(app, ["optimize", "--profile", str(prof), "--json", "--no-report",
                              "--cache-dir", str(tmp_path / "cache"), "--workers", "1"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["verified"] and data["slo_attainment"] >= 0.95
    assert data["cost_per_month_usd"] > 0 and all(e["billing"] == "pod" for e in data["plan"])
    # Warm: every capacity now comes from the cache.
    res = runner.invoke(app, ["optimize", "--profile", str(prof), "--json", "--no-report",
                              "--cache-dir", str(tmp_path / "cache"), "--workers", "1"])
    assert {c["source"] for c in json.loads(res.stdout)["capacities"]} == {"cached"}


def test_measured_melange_example_through_the_cli(tmp_path):
    """Mélange's shipped example as a `capacity:` section (tyler-griggs/melange-release
    melange/main.py@1fc682cb6562073524e9c63b8febe9bdaa280646): 5 x A10G at $5.05/h."""
    buckets = {
        "A10G": [5, 1, 10, 5],
        "A100": [20, 2, 50, 20],
    }
    ranges = [([1, 1000], [1, 200], 0.25), ([1, 1000], [201, 400], 0.125),
              ([1001, 2000], [1, 200], 0.375), ([1001, 2000], [201, 400], 0.25)]
    entries = []
    for gpu, price in (("A10G", 1.01), ("A100", 3.67)):
        entries.append({"gpu": gpu, "usd_per_hour": price, "buckets": [
            {"prompt_tokens": p, "output_tokens": o, "share": sh, "max_requests_per_second": cap}
            for (p, o, sh), cap in zip(ranges, buckets[gpu])
        ]})
    import yaml

    prof = tmp_path / "melange.yaml"
    prof.write_text(yaml.safe_dump({
        "name": "melange",
        "model": {"name": "llama-3.1-8b"},
        "traffic": {"arrivals": {"process": "poisson", "rate_per_s": 16},
                    "sizes": {"distribution": "uniform", "prompt_tokens": [1, 2000], "output_tokens": [1, 400]},
                    "horizon_seconds": 600},
        "slo": {"ttft_seconds": 2, "tpot_seconds": 0.1},
        "candidates": {"gpus": ["A10G", "A100"], "billing": ["pod"]},
        "optimizer": {"headroom": 1.0, "demand_percentile": 0.5},
        "capacity": {"source": "Mélange example", "entries": entries},
    }))
    res = runner.invoke(app, ["optimize", "--profile", str(prof), "--json", "--report", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert "not simulated" in (tmp_path / "rep" / "report.md").read_text()
    assert [(e["gpu"], e["count"]) for e in data["plan"]] == [("A10G", 5)]
    assert data["milp_cost_usd"] * 3600 / data["horizon_s"] == pytest.approx(5.05)
    assert data["slo_attainment"] is None and not data["verified"]  # measured GPUs: not simulated
    assert not any("were not considered" in n for n in data["notes"])  # every candidate was measured


def test_measured_capacities_say_which_candidates_they_leave_out(tmp_path):
    import yaml

    prof = tmp_path / "narrow.yaml"
    prof.write_text(yaml.safe_dump({
        "name": "narrow",
        "model": {"name": "llama-3.1-8b"},
        "traffic": {"arrivals": {"process": "poisson", "rate_per_s": 2},
                    "sizes": {"distribution": "fixed", "prompt_tokens": 500, "output_tokens": 100},
                    "horizon_seconds": 300},
        "slo": {"ttft_seconds": 2, "tpot_seconds": 0.1},
        "candidates": {"gpus": ["MyGPU", "h100-sxm", "l40s"], "billing": ["pod"]},
        "capacity": {"entries": [{"gpu": "MyGPU", "usd_per_hour": 1.0, "buckets": [
            {"prompt_tokens": [1, 4096], "output_tokens": [1, 1024], "share": 1.0, "max_requests_per_second": 1.5}]}]},
    }))
    res = runner.invoke(app, ["optimize", "--profile", str(prof), "--json", "--no-report"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    assert any("measures MyGPU only; candidates h100-sxm, l40s were not considered" in n for n in notes)


REAL_PROFILE = """
name: {name}
model: {{name: llama-3.1-8b}}
serving: {{max_model_len: 4096}}
traffic:
  arrivals: {arrivals}
  sizes: {{distribution: fixed, prompt_tokens: 500, output_tokens: 100}}
  horizon_seconds: {horizon}
slo: {{ttft_seconds: 2.0, tpot_seconds: 0.1, attainment: 0.95}}
candidates: {{gpus: [l4, l40s], tensor_parallel_sizes: [1], billing: [pod, serverless]}}
billing:
  serverless:
    idle_timeout_seconds: 30
    cold_start: {{cached_model: true, cached_start_seconds: 1.0}}
optimizer: {{min_replicas: 0}}
"""


def _real(tmp_path, name, arrivals, horizon):
    prof = tmp_path / f"{name}.yaml"
    prof.write_text(REAL_PROFILE.format(name=name, arrivals=arrivals, horizon=horizon))
    res = runner.invoke(app, ["optimize", "--profile", str(prof), "--json", "--no-report",
                              "--cache-dir", str(tmp_path / "cache"), "--workers", "1"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_real_sparse_traffic_goes_serverless(tmp_path):
    """Five minutes of traffic in an hour: flex workers, far cheaper than an idle pod."""
    data = _real(tmp_path, "sparse", "{process: piecewise, segments: [{duration_seconds: 1500, rate_per_s: 0}, "
                 "{duration_seconds: 300, rate_per_s: 1.0}, {duration_seconds: 1800, rate_per_s: 0}]}", 3600)
    assert data["verified"]
    assert {e["billing"] for e in data["plan"]} == {"serverless"}
    pods = next(a for a in data["alternatives"] if a["kind"] == "single_gpu_pods")
    assert data["cost_per_month_usd"] < 0.5 * pods["cost_per_month_usd"]


def test_real_steady_high_load_goes_to_pods(tmp_path):
    data = _real(tmp_path, "steady", "{process: poisson, rate_per_s: 6}", 600)
    assert data["verified"]
    assert {e["billing"] for e in data["plan"]} == {"pod"}


@pytest.mark.parametrize(("target", "message"), [("{tmp}/file", "exists and is not a folder"),
                                                 ("{tmp}/file/rep", "is not a folder"),
                                                 ("", "the path is empty")])
def test_bad_report_folder_is_refused_before_planning(fake_plan, tmp_path, target, message):
    prof = _profile_file(tmp_path)
    (tmp_path / "file").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    res = runner.invoke(app, ["optimize", "--profile", str(prof), "--report", target.format(tmp=tmp_path)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --report") and message in lines[0]
    assert fake_plan == []  # refused before the (long) planning run
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_summary_says_when_an_alternative_misses_the_slo(fake_plan, tmp_path, monkeypatch):
    from planner.cli import optimize as cli_opt

    real = cli_opt._summary

    def with_missed(result):
        alts = [a.model_copy(update={"slo_attainment": 0.947, "verified": False}) if a.kind == "all_serverless"
                and a.feasible and a.cost_per_month_usd else a for a in result.alternatives]
        return real(result.model_copy(update={"alternatives": alts, "slo_target": 0.95}))

    monkeypatch.setattr(cli_opt, "_summary", with_missed)
    res = runner.invoke(app, ["optimize", "--profile", str(_profile_file(tmp_path)), "--no-report"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.stdout.splitlines() if x.startswith("all serverless"))
    assert "SLO 94.7%, below the 95% target;" in line
