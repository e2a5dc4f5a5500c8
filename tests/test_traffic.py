"""Traffic: trace readers match the published statistics; synthetic processes hit their parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner.cli import app
from planner.errors import PlannerError
from planner.inputs.profile import (
    DiurnalArrivals,
    GammaArrivals,
    OnOffArrivals,
    PiecewiseArrivals,
    PoissonArrivals,
    TrafficSection,
)
from planner.resources import data_dir
from planner.traffic import (
    Workload,
    arrival_times,
    cap_sizes,
    diurnal_rate_per_s,
    generate_workload,
    hourly_counts,
    peak_window_count,
    read_trace,
    trace_stats,
)

SHIPPED_TRACES = data_dir("traffic_profiles/traces")
SHARED_TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"
FIXED = {"distribution": "fixed", "prompt_tokens": 100, "output_tokens": 10}


def _trace_file(name: str) -> Path:
    for folder in (SHIPPED_TRACES, SHARED_TRACES):
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"{name} is not available here (shared/traces holds it)")


def _section(arrivals: dict, sizes: dict | None = FIXED, **kw) -> TrafficSection:  # noqa: ANN003
    return TrafficSection.model_validate({"arrivals": arrivals, "sizes": sizes, **kw})


# ------------------------------------------------------------------ the four published traces
# Figures from shared/traces/README.md's statistics table.
README_TABLE = {
    "azure_llm_code_2023.csv": dict(requests=8819, duration=3435.9, mean=2.567, peak1m=723, peak1s=72, cv=13.15,
                                    prompt=(2047.8, 1469, 5188, 7436, 7437), output=(27.9, 13, 55, 251, 1899)),
    "azure_llm_conv_2023.csv": dict(requests=19366, duration=3501.7, mean=5.530, peak1m=522, peak1s=19, cv=1.09,
                                    prompt=(1154.7, 1020, 2734, 4142, 14050), output=(211.1, 129, 424, 601, 1000)),
    "mooncake_fast25_conversation_trace.jsonl": dict(
        requests=12031, duration=3537.0, mean=3.401, peak1m=260, peak1s=28, cv=3.03,
        prompt=(12035.1, 6909, 27367, 85400, 126195), output=(342.6, 350, 597, 1119, 2000)),
    "mooncake_fast25_synthetic_trace.jsonl": dict(
        requests=3993, duration=1022.0, mean=3.907, peak1m=280, peak1s=14, cv=1.01,
        prompt=(15325.5, 11587, 38611, 66456, 191378), output=(149.1, 69, 389, 768, 893)),
}


@pytest.mark.parametrize("name", list(README_TABLE))
def test_trace_statistics_match_the_readme(name: str) -> None:
    expected = README_TABLE[name]
    stats = trace_stats(read_trace(_trace_file(name)))
    assert stats.requests == expected["requests"]
    assert stats.duration_seconds == pytest.approx(expected["duration"], abs=0.05)
    assert stats.mean_rate_per_s == pytest.approx(expected["mean"], abs=0.0005)
    assert stats.peak_requests_1min == expected["peak1m"]
    assert stats.peak_rate_1min_per_s == pytest.approx(expected["peak1m"] / 60)
    assert stats.peak_rate_1s_per_s == expected["peak1s"]
    assert stats.interarrival_cv == pytest.approx(expected["cv"], abs=0.005)
    for got, want in ((stats.prompt_tokens, expected["prompt"]), (stats.output_tokens, expected["output"])):
        mean, p50, p90, p99, top = want
        assert got.mean == pytest.approx(mean, abs=0.05)
        assert (got.p50, got.p90, got.p99) == pytest.approx((p50, p90, p99), abs=0.5)
        assert got.max == top


def test_mooncake_batches_are_jittered_apart() -> None:
    path = _trace_file("mooncake_fast25_conversation_trace.jsonl")
    raw = trace_stats(read_trace(path))
    assert raw.zero_gap_fraction == pytest.approx(0.902, abs=0.001)
    section = _section({"process": "trace", "path": str(path), "jitter": "batch"}, sizes=None)
    jittered = generate_workload(section, seed=3)
    stats = trace_stats(jittered)
    assert stats.zero_gap_fraction == 0.0
    assert stats.requests == raw.requests
    assert stats.interarrival_cv < 1.5  # the 3 s batching was what made the CV 3
    # Each request stays inside its batch: before the next distinct timestamp.
    t = read_trace(path).arrival_s
    distinct = np.unique(t)
    assert np.all(np.searchsorted(distinct, np.sort(jittered.arrival_s), side="right") - 1
                  == np.searchsorted(distinct, np.sort(t), side="right") - 1)


# ---------------------------------------------------------------------- synthetic processes
def test_poisson_hits_its_rate() -> None:
    w = generate_workload(_section({"process": "poisson", "rate_per_s": 20.0}, horizon_seconds=10_000), seed=1)
    assert len(w) / w.horizon_s == pytest.approx(20.0, rel=0.02)
    assert trace_stats(w).interarrival_cv == pytest.approx(1.0, rel=0.03)


@pytest.mark.parametrize("cv", [0.5, 2.0, 4.0])
def test_gamma_hits_rate_and_cv(cv: float) -> None:
    spec = {"process": "gamma", "rate_per_s": 10.0, "cv": cv}
    w = generate_workload(_section(spec, horizon_seconds=11_000 * max(cv, 1.0) ** 2), seed=2)
    assert len(w) >= 100_000
    assert len(w) / w.horizon_s == pytest.approx(10.0, rel=0.02)
    assert trace_stats(w).interarrival_cv == pytest.approx(cv, rel=0.10)


def test_onoff_mean_rate_and_bursts() -> None:
    spec = {"process": "onoff", "base_rate_per_s": 1.0, "burst_rate_per_s": 9.0,
            "mean_burst_seconds": 30.0, "mean_gap_seconds": 90.0}
    w = generate_workload(_section(spec, horizon_seconds=1_000_000), seed=4)
    assert len(w) / w.horizon_s == pytest.approx((1 * 90 + 9 * 30) / 120, rel=0.02)
    assert trace_stats(w).peak_rate_1min_per_s > 8.0


def test_diurnal_sinusoid_shape() -> None:
    spec = DiurnalArrivals(process="diurnal", mean_rate_per_s=2.0, peak_to_trough=4.0, peak_hour=15)
    rates = diurnal_rate_per_s(spec, np.linspace(0, 24, 24 * 3600, endpoint=False))
    assert rates.max() / rates.min() == pytest.approx(4.0, rel=1e-6)
    assert rates.mean() == pytest.approx(2.0, rel=1e-6)
    assert np.argmax(rates) / 3600 == pytest.approx(15.0)
    days = 20
    w = generate_workload(_section(spec.model_dump(), horizon_seconds=days * 86400), seed=5)
    assert len(w) / w.horizon_s == pytest.approx(2.0, rel=0.02)
    per_hour = hourly_counts(w).reshape(days, 24).sum(axis=0)
    # Expected hourly counts integrate the sinusoid over each hour: the ratio is a bit under 4.
    hours = np.arange(24)[:, None] + np.linspace(0, 1, 3600, endpoint=False)[None, :]
    expected = diurnal_rate_per_s(spec, hours).mean(axis=1) * 3600 * days
    assert per_hour.max() / per_hour.min() == pytest.approx(expected.max() / expected.min(), rel=0.05)
    assert np.argmax(per_hour) in (14, 15)


def test_diurnal_hourly_multipliers_on_a_peak_rate() -> None:
    mult = [1.0] * 24
    mult[9], mult[20] = 6.0, 0.5
    spec = {"process": "diurnal", "peak_rate_per_s": 12.0, "hourly_multipliers": mult, "start_hour": 6}
    w = generate_workload(_section(spec, horizon_seconds=20 * 86400), seed=6)
    per_clock_hour = np.roll(hourly_counts(w).reshape(20, 24).sum(axis=0), 6)  # index 0 = 00:00
    rate = per_clock_hour / (20 * 3600)
    assert rate[9] == pytest.approx(12.0, rel=0.02)  # the 6x hour runs at the peak rate
    assert rate[9] / rate[20] == pytest.approx(12.0, rel=0.05)  # peak / trough as asked
    assert rate[0] == pytest.approx(2.0, rel=0.03)


def test_piecewise_schedule_repeats() -> None:
    spec = {"process": "piecewise", "segments": [{"duration_seconds": 100, "rate_per_s": 2},
                                                 {"duration_seconds": 50, "rate_per_s": 0},
                                                 {"duration_seconds": 150, "rate_per_s": 10}]}
    w = generate_workload(_section(spec, horizon_seconds=300 * 400), seed=7)
    phase = np.mod(w.arrival_s, 300)
    assert not np.any((phase >= 100) & (phase < 150))  # the idle step stays idle
    assert np.sum(phase < 100) / (400 * 100) == pytest.approx(2, rel=0.03)
    assert np.sum(phase >= 150) / (400 * 150) == pytest.approx(10, rel=0.02)
    once = generate_workload(_section({**spec, "repeat": False}, horizon_seconds=900), seed=7)
    assert once.arrival_s.max() < 300


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), horizon=st.floats(1.0, 2000.0),
       kind=st.sampled_from(["poisson", "gamma", "onoff", "diurnal", "piecewise"]))
def test_arrivals_sorted_inside_the_horizon(seed: int, horizon: float, kind: str) -> None:
    spec = {
        "poisson": PoissonArrivals(process="poisson", rate_per_s=3.0),
        "gamma": GammaArrivals(process="gamma", rate_per_s=3.0, cv=3.0),
        "onoff": OnOffArrivals(process="onoff", base_rate_per_s=0.0, burst_rate_per_s=9.0,
                               mean_burst_seconds=5.0, mean_gap_seconds=20.0),
        "diurnal": DiurnalArrivals(process="diurnal", peak_rate_per_s=3.0, peak_to_trough=10.0, start_hour=23.5),
        "piecewise": PiecewiseArrivals.model_validate(
            {"process": "piecewise", "segments": [{"duration_seconds": 7, "rate_per_s": 0},
                                                  {"duration_seconds": 3, "rate_per_s": 8}]}),
    }[kind]
    t = arrival_times(spec, horizon, np.random.default_rng(seed))
    assert np.all(np.diff(t) >= 0)
    assert len(t) == 0 or (t[0] >= 0 and t[-1] < horizon)
    if kind == "piecewise":
        assert not np.any(np.mod(t, 10) < 7)


def test_same_seed_same_workload_and_sizes_do_not_move_arrivals() -> None:
    arrivals = {"process": "gamma", "rate_per_s": 4.0, "cv": 2.0}
    a = generate_workload(_section(arrivals, horizon_seconds=600), seed=11)
    b = generate_workload(_section(arrivals, horizon_seconds=600), seed=11)
    c = generate_workload(_section(arrivals, horizon_seconds=600), seed=12)
    lognormal = {"distribution": "lognormal", "prompt_tokens": {"mu": 6, "sigma": 1}, "output_tokens": {"mu": 4, "sigma": 1}}
    d = generate_workload(_section(arrivals, sizes=lognormal, horizon_seconds=600), seed=11)
    assert np.array_equal(a.arrival_s, b.arrival_s) and np.array_equal(a.prompt_tokens, b.prompt_tokens)
    assert not np.array_equal(a.arrival_s, c.arrival_s[: len(a)]) if len(c) >= len(a) else len(c) != len(a)
    assert np.array_equal(a.arrival_s, d.arrival_s)


# -------------------------------------------------------------------------------- request sizes
def test_lognormal_sizes_hit_their_quantiles_and_are_capped() -> None:
    sizes = {"distribution": "lognormal", "prompt_tokens": {"median": 1020, "p90": 2734},
             "output_tokens": {"median": 129, "p90": 424, "max_tokens": 1000}}
    w = generate_workload(_section({"process": "poisson", "rate_per_s": 50}, sizes=sizes, horizon_seconds=4000),
                          seed=8, max_model_len=4096)
    assert np.all(w.prompt_tokens + w.output_tokens <= 4096) and w.num_capped > 0
    assert np.all(w.output_tokens >= 1) and w.output_tokens.max() == 1000
    assert np.median(w.output_tokens) == pytest.approx(129, rel=0.02)
    assert np.percentile(w.output_tokens, 90) == pytest.approx(424, rel=0.03)
    uncapped = w.prompt_tokens[w.prompt_tokens + w.output_tokens < 4096]
    assert np.median(w.prompt_tokens) == pytest.approx(1020, rel=0.02) and len(uncapped) > 0.9 * len(w)


def test_uniform_fixed_and_empirical_sizes() -> None:
    uniform = {"distribution": "uniform", "prompt_tokens": [10, 20], "output_tokens": [5, 5]}
    w = generate_workload(_section({"process": "poisson", "rate_per_s": 100}, sizes=uniform, horizon_seconds=100), 1)
    assert set(np.unique(w.prompt_tokens)) == set(range(10, 21)) and set(w.output_tokens) == {5}
    path = _trace_file("azure_llm_code_2023.csv")
    trace = read_trace(path)
    pairs = set(zip(trace.prompt_tokens.tolist(), trace.output_tokens.tolist()))
    empirical = {"distribution": "empirical", "path": str(path)}
    w = generate_workload(_section({"process": "poisson", "rate_per_s": 20}, sizes=empirical, horizon_seconds=500), 2)
    assert set(zip(w.prompt_tokens.tolist(), w.output_tokens.tolist())) <= pairs
    assert np.mean(w.prompt_tokens) == pytest.approx(trace.prompt_tokens.mean(), rel=0.05)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50_000), st.integers(0, 5_000)), min_size=1, max_size=50),
       st.integers(2, 40_000))
def test_cap_sizes_fits_max_model_len(pairs: list[tuple[int, int]], max_model_len: int) -> None:
    prompt = np.array([p for p, _ in pairs], dtype=np.int64)
    output = np.array([o for _, o in pairs], dtype=np.int64)
    p, o, changed = cap_sizes(prompt, output, max_model_len)
    assert np.all(p + o <= max_model_len) and np.all(o >= 1) and np.all(p <= prompt)
    fits = (prompt + output <= max_model_len) & (output >= 1)
    assert np.array_equal(p[fits], prompt[fits]) and np.array_equal(o[fits], output[fits])
    assert changed == int(np.count_nonzero(~fits))


# ------------------------------------------------------------------------------- trace replay
def test_trace_replay_keeps_sizes_and_transforms_time() -> None:
    path = str(_trace_file("azure_llm_conv_2023.csv"))
    raw = read_trace(path)
    as_is = generate_workload(_section({"process": "trace", "path": path}, sizes=None), max_model_len=1024)
    assert np.array_equal(as_is.prompt_tokens, raw.prompt_tokens)  # kept: the simulator rejects
    assert as_is.num_capped == 0 and as_is.horizon_s == pytest.approx(3501.7, abs=0.05)
    capped = generate_workload(_section({"process": "trace", "path": path}, sizes=None, oversize="cap"),
                               max_model_len=1024)
    assert np.all(capped.prompt_tokens + capped.output_tokens <= 1024) and capped.num_capped > 0
    fast = generate_workload(_section({"process": "trace", "path": path, "time_scale": 0.5}, sizes=None))
    assert fast.horizon_s == pytest.approx(raw.horizon_s / 2) and len(fast) == len(raw)
    offset = generate_workload(_section({"process": "trace", "path": path, "start_offset_seconds": 1800}, sizes=None))
    assert len(offset) == int(np.sum(raw.arrival_s >= 1800)) and offset.arrival_s[0] >= 0


@pytest.mark.parametrize("factor", [0.5, 2.5])
def test_trace_rate_scale_thins_or_replicates(factor: float) -> None:
    path = str(_trace_file("azure_llm_conv_2023.csv"))
    raw = read_trace(path)
    w = generate_workload(_section({"process": "trace", "path": path, "rate_scale": factor}, sizes=None), seed=9)
    assert len(w) == pytest.approx(factor * len(raw), rel=0.02)
    assert w.arrival_s[-1] <= raw.arrival_s[-1] + 1.0  # same timeline
    per_min_raw = np.bincount((raw.arrival_s // 60).astype(int))
    per_min = np.bincount((w.arrival_s // 60).astype(int), minlength=len(per_min_raw))[: len(per_min_raw)]
    assert np.corrcoef(per_min_raw, per_min)[0, 1] > 0.8  # the minute-scale shape survives


def test_trace_loops_to_the_horizon() -> None:
    path = str(_trace_file("azure_llm_code_2023.csv"))
    raw = read_trace(path)
    w = generate_workload(_section({"process": "trace", "path": path, "loop": True}, sizes=None,
                                   horizon_seconds=3 * 3600))
    assert w.horizon_s == 3 * 3600 and w.arrival_s[-1] < 3 * 3600
    assert len(w) == pytest.approx(3 * 3600 / raw.horizon_s * len(raw), rel=0.05)
    no_loop = generate_workload(_section({"process": "trace", "path": path}, sizes=None, horizon_seconds=3 * 3600))
    assert len(no_loop) == len(raw)


# ---------------------------------------------------------------------------------- readers
def test_plain_csv_with_and_without_header(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n5.0,10,2\n1.5,20,0\n")
    (tmp_path / "b.csv").write_text("1.5,20,1\n5.0,10,2\n")
    a, b = read_trace(tmp_path / "a.csv"), read_trace(tmp_path / "b.csv", "csv")
    assert a.arrival_s.tolist() == [0.0, 3.5] == b.arrival_s.tolist()
    assert a.prompt_tokens.tolist() == [20, 10] and a.output_tokens.tolist() == [1, 2]  # sorted; >= 1 token


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("x.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6,10,5\n2023-11-16 18:1:47,1,5\n",
         "x.csv line 3: TIMESTAMP '2023-11-16 18:1:47'"),
        ("x.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6,1x,5\n",
         "x.csv line 2: ContextTokens '1x' is not a number"),
        ("x.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6,10\n", "x.csv line 2: expected 3"),
        ("x.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 3}\n{"timestamp": 1\n',
         "x.jsonl line 2: not valid JSON"),
        ("x.jsonl", '{"timestamp": 0, "input_length": 5}\n', "x.jsonl line 1: needs timestamp"),
        ("y.csv", "0,1,1\n1.0,-4,1\n", "y.csv line 2: prompt_tokens '-4' must be a whole number >= 0"),
        ("y.csv", "t,a,b\n0,1,1\n", "y.csv line 1: header must name"),
        ("y.csv", "", "y.csv: empty trace file"),
    ],
)
def test_malformed_traces_name_the_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(PlannerError) as info:
        read_trace(tmp_path / name)
    assert message in str(info.value)


def test_missing_trace_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(PlannerError, match="trace file not found"):
        read_trace(tmp_path / "none.csv")
    (tmp_path / "a.csv").write_text("0,1,1\n")
    with pytest.raises(PlannerError, match="unknown trace format"):
        read_trace(tmp_path / "a.csv", "parquet")


# ------------------------------------------------------------------------------ workload object
def test_workload_slice_scale_and_read_only() -> None:
    w = Workload(np.array([0.0, 1.0, 2.5, 4.0]), np.array([1, 2, 3, 4]), np.array([5, 6, 7, 8]), 5.0, "t")
    part = w.slice(1.0, 4.0)
    assert part.arrival_s.tolist() == [0.0, 1.5] and part.prompt_tokens.tolist() == [2, 3] and part.horizon_s == 3.0
    fast = w.scale_rate(2.0)
    assert fast.arrival_s.tolist() == [0.0, 0.5, 1.25, 2.0] and fast.horizon_s == 2.5
    assert w.month_factor == pytest.approx(730 * 3600 / 5.0)
    with pytest.raises(ValueError):
        w.arrival_s[0] = 3.0
    with pytest.raises(ValueError, match="sorted"):
        Workload(np.array([1.0, 0.0]), np.array([1, 1]), np.array([1, 1]), 2.0)
    with pytest.raises(ValueError, match="equal lengths"):
        Workload(np.array([1.0]), np.array([1, 1]), np.array([1, 1]), 2.0)


def test_peak_window_is_sliding_not_binned() -> None:
    # 3 arrivals straddle the 60 s bin edge: fixed bins see 2 at most, a sliding window sees 3.
    t = np.array([10.0, 50.0, 65.0, 100.0, 130.0])
    assert peak_window_count(t, 60.0) == 3
    assert peak_window_count(t, 1.0) == 1
    assert peak_window_count(np.array([]), 60.0) == 0


# -------------------------------------------------------------------------------------- CLI
def test_cli_trace_json_matches_the_readme() -> None:
    result = CliRunner().invoke(app, ["traffic", "--trace", str(_trace_file("azure_llm_conv_2023.csv")), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["requests"] == 19366 and out["peak_requests_1min"] == 522 and out["peak_rate_1s_per_s"] == 19
    assert out["prompt_tokens"]["p50"] == 1020 and out["seed"] is None


def test_cli_profile_table_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "t.png"
    profile = str(data_dir("traffic_profiles") / "bursty.yaml")
    result = CliRunner().invoke(app, ["traffic", "--profile", profile, "--seed", "1", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "peak rate, 1 min" in result.stdout and "seed               1" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.png"]  # no temporary left behind


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "nope.csv"], "error: trace file not found: nope.csv"),
        ([], "error: give exactly one of --profile and --trace"),
        (["--trace", "x", "--jitter", "soon"], "error: --jitter must be 'batch' or a number of seconds"),
        (["--profile", "nope.yaml"], "error: profile not found: nope.yaml"),
    ],
)
def test_cli_errors_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["traffic", *args])
    assert result.exit_code == 2
    assert result.output.strip() == message or result.output.strip().startswith(message)


def test_cli_plot_needs_an_existing_folder(tmp_path: Path) -> None:
    profile = str(data_dir("traffic_profiles") / "steady.yaml")
    result = CliRunner().invoke(app, ["traffic", "--profile", profile, "--plot", str(tmp_path / "no" / "x.png")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_workload_pickles_read_only_and_absurd_rates_fail() -> None:
    import pickle

    w = Workload(np.array([0.0, 1.0]), np.array([1, 2]), np.array([3, 4]), 2.0, "x", 1)
    copy = pickle.loads(pickle.dumps(w))
    assert copy.arrival_s.tolist() == [0.0, 1.0] and copy.num_capped == 1 and not copy.arrival_s.flags.writeable
    with pytest.raises(PlannerError, match="more than 50,000,000"):
        generate_workload(_section({"process": "poisson", "rate_per_s": 3600.0}, horizon_seconds=86400 * 30))


def test_cli_profile_with_a_malformed_trace_names_the_line(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("0.0,10,5\n1.0,10,five\n")
    (tmp_path / "p.yaml").write_text(
        "model: {name: llama-3.1-8b}\n"
        "traffic: {arrivals: {process: trace, path: t.csv}}\n"
        "slo: {ttft_seconds: 2, tpot_seconds: 0.1}\n"
        "candidates: {gpus: [l4]}\n"
    )
    result = CliRunner().invoke(app, ["traffic", "--profile", str(tmp_path / "p.yaml")])
    assert result.exit_code == 2
    assert result.output.strip() == "error: t.csv line 2: output_tokens 'five' is not a number"


def test_cli_same_seed_same_json() -> None:
    profile = str(data_dir("traffic_profiles") / "steady.yaml")
    runs = [CliRunner().invoke(app, ["traffic", "--profile", profile, "--seed", s, "--json"]) for s in ("5", "5", "6")]
    assert all(r.exit_code == 0 for r in runs)
    assert runs[0].stdout == runs[1].stdout != runs[2].stdout


def test_negative_cli_seed_is_bad_input() -> None:
    from planner.inputs.profile import load_profile
    from planner.traffic import generate_workload

    profile = load_profile("traffic_profiles/steady.yaml")
    with pytest.raises(PlannerError, match="non-negative"):
        generate_workload(profile, seed=-1)


@pytest.mark.parametrize(("target", "message"), [("{tmp}", "is a folder"), ("", "the path is empty"),
                                                 ("{tmp}/x.jpg", "ending in .png")])
def test_cli_bad_plot_path_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, monkeypatch, target: str,
                                                                 message: str) -> None:
    import planner.cli.traffic as cli_traffic

    def refuse(*args, **kwargs):
        raise AssertionError("read the traffic before checking --plot")

    monkeypatch.setattr(cli_traffic, "describe_traffic", refuse)
    work = tmp_path / "work"
    work.mkdir()
    profile = str(data_dir("traffic_profiles") / "steady.yaml")
    result = CliRunner().invoke(app, ["traffic", "--profile", profile, "--plot", target.format(tmp=work)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --plot") and message in lines[0]
    assert [p.name for p in tmp_path.rglob("*")] == ["work"]
