"""Pods vs serverless vs a mix: who wins where, the break-even, and the CLI's edges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from planner.cli._app import app
from planner.compare import LoadPoint, break_even, compare
from planner.inputs.profile import Profile
from planner.sim import LinearStepModel, ReplicaSetup, SchedulerConfig
from planner.traffic import Workload

GPU = {
    "id": "h100-sxm",
    "pod_prices": [{"provider": "runpod", "cloud": "secure", "usd_per_hour": 3.49, "as_of": "2026-09-25", "source": "s"}],
    "serverless": {"tier": "80 GB PRO", "flex_usd_per_s": 0.00116, "active_usd_per_s": 0.00093,
                   "as_of": "2025-08-25", "source": "s", "ambiguous_note": ""},
}
SETUP = ReplicaSetup(step_model=LinearStepModel(fixed_s=0.01), num_gpu_blocks=4000,
                     engine_args=SchedulerConfig(max_num_seqs=64, max_num_batched_tokens=4096, max_model_len=4096))


def _profile(ttft_s=2.0, billing=None, **traffic):
    data = {
        "name": "t",
        "model": {"name": "llama-3.1-8b", "precision": "bf16"},
        "serving": {"max_model_len": 4096},
        "traffic": {"arrivals": {"process": "poisson", "rate_per_s": 1.0},
                    "sizes": {"distribution": "fixed", "prompt_tokens": 100, "output_tokens": 50},
                    "horizon_seconds": 600, **traffic},
        "slo": {"ttft_seconds": ttft_s, "tpot_seconds": 0.1, "attainment": 0.9},
        "candidates": {"gpus": ["h100-sxm"]},
        "billing": billing or {},
    }
    return Profile.from_dict(data)


def _workload(arrivals, horizon_s, prompt=100, output=50):
    a = np.asarray(arrivals, dtype=np.float64)
    return Workload(a, np.full(len(a), prompt), np.full(len(a), output), horizon_s)


def _option(result, name):
    return next(r for r in result.options if r.option == name)


def test_steady_high_load_pods_win():
    rng = np.random.default_rng(1)
    arrivals = np.sort(rng.uniform(0, 600, 1200))  # 2 req/s, every second busy
    result = compare(_profile(), GPU, workload=_workload(arrivals, 600.0), setup=SETUP, load_factors=(1.0,),
                     extend_steps=0)
    pods, serverless = _option(result, "pods"), _option(result, "serverless")
    assert pods.pods == 1 and pods.meets_slo
    assert pods.cost.cost_usd == pytest.approx(3.49 / 6)  # 10 minutes of one pod
    assert serverless.cost.cost_usd > pods.cost.cost_usd
    assert result.cheapest_meeting_slo in ("pods", "mix")
    assert _option(result, "mix").cost.cost_usd == pytest.approx(pods.cost.cost_usd)  # the pod never overflows


def test_sparse_spiky_load_serverless_wins():
    # A burst of 10 requests every 20 minutes for 2 hours; cached model starts in 4.2 s; TTFT SLO 10 s.
    arrivals = np.concatenate([t + np.linspace(0, 2, 10) for t in range(0, 7200, 1200)])
    profile = _profile(ttft_s=10.0, billing={"serverless": {"cold_start": {"cached_model": True}}})
    result = compare(profile, GPU, workload=_workload(arrivals, 7200.0), setup=SETUP, load_factors=(1.0,),
                     extend_steps=0)
    serverless, pods = _option(result, "serverless"), _option(result, "pods")
    assert serverless.meets_slo and pods.meets_slo
    assert serverless.cost.cold_starts == 6
    assert serverless.cost.cost_usd < pods.cost.cost_usd / 10
    assert result.cheapest_meeting_slo == "serverless"
    assert result.cold_start_s == pytest.approx(4.2)


def test_break_even_is_bracketed_by_the_sweep():
    rng = np.random.default_rng(2)
    arrivals = np.sort(rng.uniform(0, 3600, 120))  # 1 request per 30 s ...
    result = compare(_profile(ttft_s=30.0, billing={"serverless": {"cold_start": {"cached_model": True}}}), GPU,
                     workload=_workload(arrivals, 3600.0), setup=SETUP, load_factors=(0.125, 1.0, 8.0),
                     extend_steps=0)
    rate = result.break_even_rate_per_s
    assert rate is not None, result.break_even_note
    below = [p for p in result.sweep if p.mean_rate_per_s < rate]
    above = [p for p in result.sweep if p.mean_rate_per_s > rate]
    assert below and above
    assert all(p.cost_per_month_usd["serverless"] < p.cost_per_month_usd["pods"] for p in below)
    assert all(p.cost_per_month_usd["pods"] <= p.cost_per_month_usd["serverless"] for p in above)
    # Pods cost the same at every load here (one pod is enough); serverless grows with the load.
    assert len({round(p.cost_per_month_usd["pods"], 6) for p in result.sweep}) == 1


def test_break_even_interpolation_and_notes():
    def pt(rate, pods, sl):
        return LoadPoint(load_factor=rate, mean_rate_per_s=rate, pods_needed=1,
                         cost_per_month_usd={"pods": pods, "serverless": sl, "mix": None},
                         meets_slo={"pods": True, "serverless": True, "mix": None})

    rate, _ = break_even([pt(1.0, 100.0, 50.0), pt(3.0, 100.0, 150.0)])
    assert rate == pytest.approx(2.0)
    assert break_even([pt(1.0, 10.0, 50.0)])[0] is None
    assert "below" in break_even([pt(1.0, 10.0, 50.0)])[1]
    assert "above" in break_even([pt(1.0, 100.0, 50.0)])[1]


def _write_profile(tmp_path, **billing):
    data = {
        "name": "tiny",
        "model": {"name": "llama-3.1-8b", "precision": "bf16"},
        "serving": {"max_model_len": 4096},
        "traffic": {"arrivals": {"process": "poisson", "rate_per_s": 0.5},
                    "sizes": {"distribution": "fixed", "prompt_tokens": 200, "output_tokens": 20},
                    "horizon_seconds": 120},
        "slo": {"ttft_seconds": 2.0, "tpot_seconds": 0.1, "attainment": 0.9},
        "candidates": {"gpus": ["h100-sxm"]},
        "billing": billing,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--idle-timeout", "-1"], "idle_timeout_seconds"),
        (["--active-workers", "4", "--max-workers", "2"], "below active workers"),
        (["--scaler", "cpu"], "scaler"),
        (["--gpu", "mi300x"], "no serverless price"),
    ],
)
def test_compare_bad_settings_exit_2(tmp_path, extra, message):
    args = ["compare", "--profile", str(_write_profile(tmp_path))]
    args += extra if "--gpu" in extra else ["--gpu", "h100-sxm"] + extra
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and "Traceback" not in res.output
    assert res.stdout == ""


def test_profile_with_max_workers_below_active_exit_2(tmp_path):
    path = _write_profile(tmp_path, serverless={"active_workers": 3, "max_workers": 1})
    res = CliRunner().invoke(app, ["simulate", "--profile", str(path), "--gpu", "h100-sxm", "--billing", "serverless"])
    assert res.exit_code == 2
    assert "max_workers" in res.stderr


def test_compare_cli_json_and_plot(tmp_path):
    plot = tmp_path / "cmp.png"
    res = CliRunner().invoke(app, ["compare", "--profile", str(_write_profile(tmp_path)), "--gpu", "h100-sxm",
                                   "--load-factors", "1", "--max-pods", "2", "--plot", str(plot), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [o["option"] for o in data["options"]] == ["pods", "serverless", "mix"]
    assert data["options"][0]["cost"]["prices"]["pod_price_label"].startswith("runpod secure")
    assert any("estimated" in a for a in data["assumptions"])
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_simulate_billing_serverless_json(tmp_path):
    path = _write_profile(tmp_path)
    res = CliRunner().invoke(app, ["simulate", "--profile", str(path), "--gpu", "h100-sxm", "--billing", "serverless",
                                   "--max-workers", "2", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    for key in ("cost_usd", "cost_per_month_usd", "cost_per_million_output_tokens_usd", "cold_starts",
                "billed_gpu_seconds", "busy_gpu_seconds"):
        assert key in data
    assert data["cold_starts"] >= 1
    assert data["busy_gpu_seconds"] <= data["billed_gpu_seconds"]
    assert data["cost_usd"] == pytest.approx(data["billed_gpu_seconds"] * 0.00116)
    # One worker's cold start, by part, and the assumptions behind the cost (as compare lists them).
    from planner.billing import cold_start
    from planner.compare import model_weights_bytes

    expected = cold_start(model_weights_bytes(_profile()))
    parts = data["cold_start"]
    assert parts["total_s"] == pytest.approx(expected.total_s)
    assert parts["total_s"] == pytest.approx(parts["container_start_s"] + parts["weights_load_s"] + parts["engine_warmup_s"])
    warmup = next(a for a in data["assumptions"] if "engine_warmup_seconds" in a)
    assert "estimated for llama-3.1-8b on h100-sxm" in warmup and "measured for llama-3.1-8b on l40s" in warmup
    pods = json.loads(CliRunner().invoke(app, ["simulate", "--profile", str(path), "--gpu", "h100-sxm",
                                               "--json"]).stdout)
    assert pods["cold_starts"] == 0 and pods["billed_gpu_seconds"] == pytest.approx(120.0)
    assert pods["cold_start"] is None  # pods have no serverless cold start, nor its assumptions
    assert pods["assumptions"] and not any("engine_warmup" in a for a in pods["assumptions"])


def test_simulate_billing_serverless_text_lists_cold_start_and_assumptions(tmp_path):
    path = _write_profile(tmp_path)
    res = CliRunner().invoke(app, ["simulate", "--profile", str(path), "--gpu", "h100-sxm", "--billing", "serverless",
                                   "--max-workers", "2"])
    assert res.exit_code == 0, res.output
    cold = next(line for line in res.stdout.splitlines() if line.startswith("cold start "))
    assert "container 5.0 s" in cold and "engine warm-up 64.0 s" in cold
    after = res.stdout.split("Assumptions:\n", 1)[1]
    assert "- billing.serverless.cold_start.model_load_bytes_per_second" in after
    assert "property of the host's storage" in after


def test_billing_notes_cached_start_replaces_the_parts():
    from planner.compare import billing_notes

    notes = billing_notes(_profile(billing={"serverless": {"cold_start": {"cached_model": True}}}), GPU, "serverless")
    assert notes.cold_start.cached and notes.cold_start.total_s == pytest.approx(4.2)
    assert any("cached_start_seconds" in a for a in notes.assumptions)
    assert not any("engine_warmup_seconds" in a for a in notes.assumptions)


def test_simulate_without_billing_still_runs_when_no_price(tmp_path):
    path = _write_profile(tmp_path)
    gpu = yaml.safe_load((Path(__file__).resolve().parent.parent / "gpu_catalog" / "h100-sxm.yaml").read_text())
    gpu.update(id="h100-unpriced", pod_prices=[])
    gpu_path = tmp_path / "h100-unpriced.yaml"
    gpu_path.write_text(yaml.safe_dump(gpu))
    res = CliRunner().invoke(app, ["simulate", "--profile", str(path), "--gpu", str(gpu_path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["cost"] is None and "pod price" in data["cost_note"]
    res = CliRunner().invoke(app, ["simulate", "--profile", str(path), "--gpu", str(gpu_path), "--billing", "pod"])
    assert res.exit_code == 2 and "pod price" in res.stderr


def test_pod_schedule_bills_each_pod_from_its_start():
    from planner.compare import simulate_billed

    arrivals = np.linspace(0, 7000, 50)
    outcome, cost = simulate_billed(_profile(), GPU, SETUP, _workload(arrivals, 7200.0), "pod", pod_schedule=[1, 2])
    # Hour 1: one pod; hour 2: two (the second starts at 3600 s, ready 60 s later, billed from its start).
    assert cost.cost_usd == pytest.approx(3 * 3.49)
    late = [w for w in outcome.workers if w.started_at > 0]
    assert len(late) == 1 and late[0].ready_at == pytest.approx(3660.0)


@pytest.mark.parametrize(("target", "message"), [("{tmp}", "is a folder"), ("", "the path is empty"),
                                                 ("{tmp}/missing/c.png", "does not exist")])
def test_compare_bad_plot_path_fails_before_simulating(tmp_path, monkeypatch, target, message):
    def refuse(*args, **kwargs):
        raise AssertionError("simulated before checking --plot")

    monkeypatch.setattr("planner.compare.compare", refuse)
    work = tmp_path / "work"
    work.mkdir()
    res = CliRunner().invoke(app, ["compare", "--profile", str(_write_profile(tmp_path)), "--gpu", "h100-sxm",
                                   "--plot", target.format(tmp=work)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --plot") and message in lines[0]
    assert list(work.iterdir()) == []


def test_options_report_batch_fullness_next_to_in_flight_time():
    rng = np.random.default_rng(1)
    arrivals = np.sort(rng.uniform(0, 600, 1200))
    result = compare(_profile(), GPU, workload=_workload(arrivals, 600.0), setup=SETUP, load_factors=(1.0,),
                     extend_steps=0)
    for run in result.options:
        assert run.max_num_seqs == 64  # SETUP's cap
        assert 0 < run.mean_batch_per_replica <= 64
    from planner.cli.compare import _table
    from planner.report.billing_text import format_cost

    table = _table(result)
    pods = _option(result, "pods")
    assert f"{pods.mean_batch_per_replica:.1f}/64" in table and "in flight" in table and "util" not in table
    text = format_cost(pods.cost)
    assert "with requests in flight" in text and "spend with no request in flight" in text
    assert "utilization" not in text and "idle spend" not in text


def test_no_break_even_when_one_side_never_meets_the_slo():
    """Serverless cheaper at low load but missing the SLO everywhere: no break-even, said plainly."""
    def pt(rate, pods, sl, sl_ok, sl_att):
        return LoadPoint(load_factor=rate, mean_rate_per_s=rate, pods_needed=1,
                         cost_per_month_usd={"pods": pods, "serverless": sl, "mix": None},
                         meets_slo={"pods": True, "serverless": sl_ok, "mix": None},
                         slo_attainment={"pods": 0.99, "serverless": sl_att, "mix": None})

    never = [pt(0.1, 800.0, 400.0, False, 0.6), pt(1.0, 800.0, 1000.0, False, 0.788)]
    rate, note = break_even(never)
    assert rate is None
    assert note.startswith("none: serverless misses the SLO at every load swept (0.1 to 1 req/s; best attainment 78.8%")
    assert note.endswith("so only pods meet it")
    # Where serverless meets the SLO only at some loads, only those are compared.
    partly = [pt(0.1, 800.0, 400.0, False, 0.6), pt(1.0, 800.0, 700.0, True, 0.96), pt(2.0, 800.0, 900.0, True, 0.97)]
    rate, note = break_even(partly)
    assert rate == pytest.approx(1.5) and "compared where both meet the SLO: 1 to 2 req/s" in note


def test_compare_plot_marks_where_an_option_misses_the_slo(tmp_path):
    from planner.compare import CompareResult
    from planner.report.compare_plot import _miss_spans, write_compare_plot

    (lo, hi), = _miss_spans([1.0, 2.0, 4.0], [True, False, False])
    assert (lo, hi) == (pytest.approx(2 ** 0.5), pytest.approx(2 ** 2.5))
    assert _miss_spans([1.0, 2.0], [True, True]) == []

    def pt(f, sl_ok):
        return LoadPoint(load_factor=f, mean_rate_per_s=f, pods_needed=1,
                         cost_per_month_usd={"pods": 800.0, "serverless": 500.0 * f, "mix": 700.0},
                         meets_slo={"pods": True, "serverless": sl_ok, "mix": True})

    result = CompareResult(profile="p", gpu_id="l40s", tensor_parallel_size=1, seed=0, horizon_s=3600.0,
                           num_requests=100, mean_rate_per_s=1.0, cold_start_s=87.0, options=[],
                           cheapest_meeting_slo="pods", break_even_rate_per_s=None, break_even_note="none",
                           sweep=[pt(0.25, False), pt(0.5, False), pt(1.0, True), pt(2.0, True)], assumptions=[])
    out = write_compare_plot(result, tmp_path / "compare.png")
    assert out.stat().st_size > 10_000
