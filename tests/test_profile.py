"""Profiles: the shipped ones load and ask real questions; bad ones fail naming the field."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from typer.testing import CliRunner

from planner.cli import app
from planner.errors import PlannerError
from planner.inputs.profile import (
    LognormalTokens,
    OnOffArrivals,
    Profile,
    TraceArrivals,
    load_profile,
    validation_message,
)
from planner.resources import data_dir
from planner.traffic import generate_workload, trace_stats

PROFILES = data_dir("traffic_profiles")
SHIPPED = ["bursty", "steady", "diurnal", "azure_conv"]


def _bursty_dict() -> dict:
    return yaml.safe_load((PROFILES / "bursty.yaml").read_text())


def _write(tmp_path: Path, data: dict, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _error(tmp_path: Path, data: dict) -> str:
    with pytest.raises(PlannerError) as info:
        load_profile(_write(tmp_path, data))
    return str(info.value)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load(name: str) -> None:
    profile = load_profile(PROFILES / f"{name}.yaml")
    assert profile.name == name
    assert profile.model.name == "llama-3.1-8b"
    assert 0 < profile.slo.attainment <= 1


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_candidates_and_model_exist(name: str) -> None:
    catalog = pytest.importorskip("planner.inputs.catalog")
    models = pytest.importorskip("planner.inputs.models")
    profile = load_profile(PROFILES / f"{name}.yaml")
    known = set(catalog.list_gpus())
    assert set(profile.candidates.gpus) <= known, set(profile.candidates.gpus) - known
    assert models.get_model(profile.model.name).num_hidden_layers > 0


def test_bursty_is_a_real_planning_question() -> None:
    profile = load_profile(PROFILES / "bursty.yaml")
    assert len(profile.candidates.gpus) >= 5
    assert set(profile.candidates.tensor_parallel_sizes) >= {1, 2}
    assert set(profile.candidates.billing) == {"pod", "serverless"}
    assert profile.traffic.horizon_seconds >= 3600
    # The busiest minute is several times the mean for the default seed and for others.
    for seed in (0, 1, 2, 3):
        stats = trace_stats(generate_workload(profile, seed))
        assert stats.peak_to_mean_1min >= 2.5, (seed, stats.peak_to_mean_1min)
        assert 2.0 < stats.mean_rate_per_s < 5.0  # moderate: the optimizer must run it quickly


def test_bursty_mean_rate_follows_its_comment() -> None:
    spec = load_profile(PROFILES / "bursty.yaml").traffic.arrivals
    assert isinstance(spec, OnOffArrivals)
    mean = (spec.base_rate_per_s * spec.mean_gap_seconds + spec.burst_rate_per_s * spec.mean_burst_seconds) / (
        spec.mean_gap_seconds + spec.mean_burst_seconds
    )
    assert mean == pytest.approx(3.25)


def test_name_defaults_to_file_stem(tmp_path: Path) -> None:
    data = _bursty_dict()
    del data["name"]
    assert load_profile(_write(tmp_path, data, "my-plan.yaml")).name == "my-plan"


def test_later_sections_have_documented_defaults() -> None:
    data = _bursty_dict()
    for key in ("billing", "optimizer"):
        data.pop(key)
    profile = Profile.from_dict(data)
    assert profile.billing.pod_cloud == "secure"
    assert profile.billing.pod_billing_granularity_seconds == 1
    serverless = profile.billing.serverless
    assert (serverless.active_workers, serverless.max_workers, serverless.idle_timeout_seconds) == (0, 3, 5)
    assert serverless.scaler == "queue-delay" and serverless.scaler_value_resolved == 4.0
    assert serverless.cold_start.cached_model is False
    assert profile.optimizer.slot_seconds == 3600 and profile.optimizer.headroom == 0.9
    assert profile.optimizer.min_replicas == 1 and profile.capacity is None and profile.prices == []


def test_capacity_and_prices_sections_validate() -> None:
    data = _bursty_dict()
    data["prices"] = [{"gpu": "l4", "pod_usd_per_hour": 0.5, "source": "quote"}]
    data["capacity"] = {
        "entries": [
            {"gpu": "l4", "tensor_parallel_size": 1, "usd_per_hour": 0.5,
             "buckets": [{"prompt_tokens": [1, 2048], "output_tokens": [1, 512], "share": 1.0,
                          "max_requests_per_second": 1.5}]}
        ]
    }
    profile = Profile.from_dict(data)
    assert profile.capacity.entries[0].buckets[0].max_requests_per_second == 1.5
    data["prices"] = [{"gpu": "l4"}]
    with pytest.raises(ValidationError) as info:
        Profile.from_dict(data)
    assert "prices.0" in validation_message(info.value)


def test_trace_path_is_relative_to_the_profile(tmp_path: Path) -> None:
    (tmp_path / "sub" / "data").mkdir(parents=True)
    shutil.copy(PROFILES / "traces" / "azure_llm_code_2023.csv", tmp_path / "sub" / "data" / "t.csv")
    data = yaml.safe_load((PROFILES / "azure_conv.yaml").read_text())
    data["traffic"]["arrivals"]["path"] = "data/t.csv"
    profile = load_profile(_write(tmp_path / "sub", data))
    assert isinstance(profile.traffic.arrivals, TraceArrivals)
    assert Path(profile.traffic.arrivals.path) == (tmp_path / "sub" / "data" / "t.csv").resolve()
    assert len(generate_workload(profile)) == 8819


def test_model_config_path_is_relative_to_the_profile(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 2}))
    data = _bursty_dict()
    data["model"]["name"] = "config.json"
    assert load_profile(_write(tmp_path, data)).model.name == str((tmp_path / "config.json").resolve())


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["traffic"]["arrivals"].update(base_rate_per_s=-1),
         "traffic.arrivals.base_rate_per_s: must be >= 0"),
        (lambda d: d["traffic"]["arrivals"].update(burst_rate_per_s="fast"),
         "traffic.arrivals.burst_rate_per_s: Input should be a valid number"),
        (lambda d: d["traffic"]["arrivals"].update(mean_gap_secs=3),
         "traffic.arrivals.mean_gap_secs: unknown key (did you mean 'mean_gap_seconds'?"),
        (lambda d: d["slo"].update(ttft_second=2), "slo.ttft_second: unknown key (did you mean 'ttft_seconds'?"),
        (lambda d: d.update(slox=1), "slox: unknown key"),
        (lambda d: d["traffic"]["arrivals"].update(process="weird"), "traffic.arrivals: Input tag 'weird'"),
        (lambda d: d["traffic"]["arrivals"].update(burst_rate_per_s=1.0),
         "traffic.arrivals: burst_rate_per_s must be >= base_rate_per_s"),
        (lambda d: d["serving"].update(gpu_memory_utilization=1.5), "serving.gpu_memory_utilization: must be <= 1"),
        (lambda d: d["slo"].pop("ttft_seconds"), "slo.ttft_seconds: required field is missing"),
        (lambda d: d["candidates"].update(gpus=[]), "candidates.gpus:"),
        (lambda d: d["candidates"].update(billing=["spot"]), "candidates.billing.0:"),
        (lambda d: d["billing"]["serverless"].update(idle_timeout_seconds=-1),
         "billing.serverless.idle_timeout_seconds: must be >= 0"),
        (lambda d: d["traffic"]["sizes"]["prompt_tokens"].update(p95=3),
         "traffic.sizes.prompt_tokens.p95: unknown key"),
        (lambda d: d["traffic"].update(sizes=None), "traffic: sizes is required unless arrivals.process is trace"),
        (lambda d: d["traffic"].update(sizes={"distribution": "trace"}),
         "traffic: sizes.distribution 'trace' needs arrivals.process 'trace'"),
        (lambda d: d["traffic"]["sizes"].update(prompt_tokens={"mean": 1155, "p90": 2734}),
         "traffic.sizes.prompt_tokens: no lognormal has mean 1155"),
        (lambda d: d["traffic"].update(arrivals={"process": "trace", "path": "missing.csv"}),
         "traffic.arrivals.path: file not found"),
        (lambda d: d["traffic"].update(arrivals={"process": "diurnal", "mean_rate_per_s": 1, "peak_rate_per_s": 2,
                                                 "peak_to_trough": 3}),
         "give exactly one of mean_rate_per_s and peak_rate_per_s"),
        (lambda d: d["traffic"].update(arrivals={"process": "piecewise",
                                                 "segments": [{"duration_seconds": 5, "rate_per_s": 0}]}),
         "no traffic"),
    ],
)
def test_bad_profiles_name_the_field(tmp_path: Path, edit, expected: str) -> None:  # noqa: ANN001
    data = _bursty_dict()
    edit(data)
    message = _error(tmp_path, data)
    assert message.startswith("p.yaml: ")
    assert expected in message, message
    assert "\n" not in message


def test_unreadable_profiles(tmp_path: Path) -> None:
    with pytest.raises(PlannerError, match="profile not found"):
        load_profile(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: x\n")
    with pytest.raises(PlannerError, match="line 2 is not valid YAML"):
        load_profile(bad)
    bad.write_text("- a list\n")
    with pytest.raises(PlannerError, match="a profile is a YAML mapping"):
        load_profile(bad)


def test_cli_bad_profile_exits_2_with_one_line(tmp_path: Path) -> None:
    data = _bursty_dict()
    data["traffic"]["arrivals"]["base_rate_per_s"] = -1
    result = CliRunner().invoke(app, ["traffic", "--profile", str(_write(tmp_path, data))])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line]
    path = tmp_path / "p.yaml"
    line_no = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "base_rate_per_s" in t)
    assert lines == [f"error: p.yaml: line {line_no}: traffic.arrivals.base_rate_per_s: must be >= 0.0 (got -1)"]


# ---------------------------------------------------------------------------------- lognormal
Z90, Z99 = 1.2815515655446004, 2.3263478740408408


@settings(max_examples=60, deadline=None)
@given(mu=st.floats(1.0, 9.0), sigma=st.floats(0.05, 1.2))
def test_lognormal_pairs_round_trip(mu: float, sigma: float) -> None:
    mean, median = math.exp(mu + sigma**2 / 2), math.exp(mu)
    p90, p99 = math.exp(mu + Z90 * sigma), math.exp(mu + Z99 * sigma)
    for given_pair in ({"mean": mean, "median": median}, {"median": median, "p90": p90},
                       {"median": median, "p99": p99}, {"mean": mean, "p90": p90}, {"mean": mean, "p99": p99}):
        if "mean" in given_pair and ("p90" in given_pair and sigma > Z90 or "p99" in given_pair and sigma > Z99):
            continue  # the other root: mean + percentile fixes sigma only up to sigma <= z
        got = LognormalTokens(**given_pair).mu_sigma()
        assert got == pytest.approx((mu, sigma), rel=1e-6, abs=1e-9), given_pair


def test_lognormal_needs_a_solvable_pair() -> None:
    with pytest.raises(ValidationError, match="give mu and sigma"):
        LognormalTokens(mean=10)
    with pytest.raises(ValidationError, match="mean > median"):
        LognormalTokens(mean=10, median=20)


# ------------------------------------------------------------------------------------ the docs
ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOC = ROOT / "docs" / "profile.md"


def _field_names(model: type, seen: set) -> set[str]:  # noqa: ANN001
    from typing import get_args

    from pydantic import BaseModel

    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, field in model.model_fields.items():
        names.add(name)
        stack = [field.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                names |= _field_names(tp, seen)
            stack.extend(get_args(tp))
    return names


def test_docs_example_is_valid_and_every_field_is_documented() -> None:
    import re

    # The annotated example lives in the README; docs/profile.md details the processes and sizes.
    text = README.read_text() + DOC.read_text()
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", README.read_text(), re.S).group(1))
    Profile.from_dict(example)
    missing = sorted(n for n in _field_names(Profile, set()) if not re.search(rf"\b{n}\b", text))
    assert missing == []


def test_shipped_profiles_resolve_from_any_directory(tmp_path, monkeypatch) -> None:
    from planner.inputs.profile import load_profile

    monkeypatch.chdir(tmp_path)
    assert load_profile("traffic_profiles/bursty.yaml").name == "bursty"
    assert load_profile("steady.yaml").name == "steady"
    with pytest.raises(PlannerError, match="shipped ones: .*bursty.yaml"):
        load_profile("traffic_profiles/no-such.yaml")


def test_negative_seed_is_rejected_by_name() -> None:
    data = yaml.safe_load((data_dir("traffic_profiles") / "steady.yaml").read_text())
    data["traffic"]["seed"] = -4
    with pytest.raises(ValidationError, match="seed"):
        Profile.from_dict(data)
