"""The optimize report: files, self-contained HTML, plan.json, deploy settings, atomic writes."""

from __future__ import annotations

import re

import numpy as np
import pytest

import plan_doubles as D
from planner.errors import PlannerError
from planner.plan import OptimizeResult, plan
from planner.report import deploy
from planner.report.optimize_report import render_markdown, write_report
from planner.traffic import Workload


@pytest.fixture(scope="module")
def planned():
    t = np.concatenate([np.arange(600) * 1.0, 1800 + np.arange(600) / 10.0])
    t.sort()
    wl = Workload(t, np.full(len(t), 500), np.full(len(t), 100), 3600.0)
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0})
    result, arts = plan(profile, backend=D.backend(), use_cache=False, workload=wl)
    return profile, result, arts


def test_report_files(planned, tmp_path):
    profile, result, arts = planned
    out = tmp_path / "rep"
    written = write_report(result, arts, out, profile=profile)
    names = {p.relative_to(out).as_posix() for p in written}
    assert {"report.md", "report.html", "plan.json", "demand.png", "latency.png", "alternatives.png"} <= names
    assert any(n.startswith("deploy/") for n in names)
    # plan.json is the result model.
    loaded = OptimizeResult.model_validate_json((out / "plan.json").read_text())
    assert loaded.cost_per_month_usd == result.cost_per_month_usd
    # The HTML is self-contained: images inline, no external links to files.
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3
    assert not re.search(r"src='(?!data:)", page)
    assert "<table>" in page and "Assumptions" in page
    md = (out / "report.md").read_text()
    for section in ("## Alternatives", "## Assumptions", "## Deploy", "## Rounds", "cheapest single-GPU pods", "all serverless"):
        assert section in md
    assert "test prices for" in md  # the backend's assumptions reach the report


def test_rewrite_same_folder_replaces_files(planned, tmp_path):
    profile, result, arts = planned
    out = tmp_path / "rep"
    write_report(result, arts, out, profile=profile)
    write_report(result, arts, out, profile=profile)
    assert (out / "report.html").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rep.")]  # no temp folder left


def test_unwritable_destination_is_one_clear_error(planned, tmp_path):
    profile, result, arts = planned
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PlannerError, match="cannot write the report"):
        write_report(result, arts, blocker / "rep", profile=profile)


def test_deploy_settings_render_vllm_names():
    entry = {
        "gpu": "l40s", "tensor_parallel_size": 2, "billing": "serverless", "count": 3,
        "engine": {"model": "llama-3.1-8b", "tensor_parallel_size": 2, "max_model_len": 8192,
                   "gpu_memory_utilization": 0.9, "max_num_seqs": 256, "max_num_batched_tokens": 8192,
                   "block_size": 16, "enable_chunked_prefill": True, "quantization": "awq",
                   "kv_cache_dtype": "fp8", "precision": "bf16"},
        "serverless": {"active_workers": 1, "max_workers": 3, "idle_timeout_seconds": 5, "scaler": "queue-delay", "scaler_value": 4},
    }
    cmd = deploy.vllm_serve_command(entry)
    assert cmd.startswith("vllm serve meta-llama/Llama-3.1-8B-Instruct")
    for flag in ("--tensor-parallel-size 2", "--max-model-len 8192", "--gpu-memory-utilization 0.9",
                 "--quantization awq", "--kv-cache-dtype fp8", "--enable-chunked-prefill"):
        assert flag in cmd
    env = deploy.serverless_env(entry)
    assert env["MAX_MODEL_LEN"] == "8192" and env["GPU_MEMORY_UTILIZATION"] == "0.9"
    assert env["TENSOR_PARALLEL_SIZE"] == "2" and env["ENABLE_CHUNKED_PREFILL"] == "true"
    ep = deploy.endpoint_settings(entry)
    assert ep["active_workers"] == 1 and ep["max_workers"] == 3 and ep["scaler_type"] == "QUEUE_DELAY"


def test_markdown_marks_a_plan_that_misses_the_slo(planned):
    profile, result, arts = planned
    missed = result.model_copy(update={"verified": False, "slo_attainment": 0.5, "notes": ["missed"]})
    from planner.report.optimize_report import _View

    md = render_markdown(_View(missed, 0.9, 2.0, 0.1, 0.99))
    assert "MISSES" in md and "> missed" in md
