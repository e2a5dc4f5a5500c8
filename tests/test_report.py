"""The optimize report: files, self-contained HTML, plan.json, deploy settings, atomic writes."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

import plan_doubles as D
from planner.errors import PlannerError
from planner.optimize.loop import plan
from planner.optimize.result import OptimizeResult
from planner.report import deploy
from planner.report.optimize_report import _tightened_text, render_markdown, write_report
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
    for section in ("## Alternatives", "## Assumptions", "## Deploy", "## Rounds", "## Finance",
                    "the cheapest pods on one GPU type", "the all-serverless plan", "Tail latency:"):
        assert section in md
    assert "single" not in md.lower()  # "one GPU type", not "single gpu"
    assert "test prices: for" in md  # the backend's assumptions reach the report
    assert "### For the chosen plan" in md and "<h3>For the chosen plan</h3>" in page
    # The page: viewport tag, tables in scroll boxes, the profile's copy and the cost lines beside it.
    assert '<meta name="viewport"' in page and '<div class="table-wrap"><table>' in page
    assert {"profile.yaml", "cost_lines.csv"} <= names
    rows = (out / "cost_lines.csv").read_text().splitlines()
    assert rows[0].startswith("line,gpu,tensor_parallel_size,billing")
    assert len(rows) == 1 + len(result.verification.cost_lines)
    monthly = sum(float(r.split(",")[8]) for r in rows[1:])
    assert monthly == pytest.approx(result.cost_per_month_usd, abs=0.01 * len(rows))


def test_report_renders_from_plan_json_alone(planned, tmp_path):
    """plan.json carries everything the text needs: the report drawn from it again is the same."""
    profile, result, arts = planned
    write_report(result, arts, tmp_path / "a", profile=profile)
    loaded = OptimizeResult.model_validate_json((tmp_path / "a" / "plan.json").read_text())
    assert render_markdown(loaded) == render_markdown(result)
    write_report(loaded, None, tmp_path / "b")
    md = (tmp_path / "b" / "report.md").read_text()
    assert "SLO: TTFT <= 2 s and TPOT <= 0.1 s for 95% of requests" in md


def test_assumptions_have_the_plans_and_the_alternatives_parts(planned):
    _, result, _ = planned
    r = result.model_copy(update={"assumptions": ["plan line"], "alternative_assumptions": ["alt line"]})
    md = render_markdown(r)
    part = md[md.index("## Assumptions"):md.index("## Run")]
    assert part.index("### For the chosen plan") < part.index("- plan line")
    assert part.index("- plan line") < part.index("### For the alternatives shown") < part.index("- alt line")
    none = render_markdown(result.model_copy(update={"alternative_assumptions": []}))
    assert "### For the alternatives shown" not in none


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
    with pytest.raises(PlannerError, match="is not a folder"):
        write_report(result, arts, blocker / "rep", profile=profile)
    with pytest.raises(PlannerError, match="exists and is not a folder"):
        write_report(result, arts, blocker, profile=profile)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no temporary folder left


def test_report_files_have_normal_permissions_and_scripts_are_executable(planned, tmp_path):
    profile, result, arts = planned
    old = os.umask(0o022)
    try:
        written = write_report(result, arts, tmp_path / "rep", profile=profile)
    finally:
        os.umask(old)
    modes = {p.relative_to(tmp_path / "rep").as_posix(): stat.S_IMODE(p.stat().st_mode) for p in written}
    scripts = [n for n in modes if n.endswith(".sh")]
    assert scripts, "the plan has a pod line, so deploy/ holds a script"
    assert all(modes[n] == 0o755 for n in scripts)
    assert all(m == 0o644 for n, m in modes.items() if not n.endswith(".sh"))
    assert stat.S_IMODE((tmp_path / "rep").stat().st_mode) == 0o755


def test_report_into_a_folder_with_an_entry_in_the_way_writes_nothing(planned, tmp_path):
    profile, result, arts = planned
    out = tmp_path / "rep"
    (out / "report.md").mkdir(parents=True)  # a folder where a file goes
    with pytest.raises(PlannerError, match="in the way"):
        write_report(result, arts, out, profile=profile)
    assert [p.name for p in out.iterdir()] == ["report.md"]  # nothing else moved in
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]  # no temporary folder left


def test_answer_and_chart_say_when_an_alternative_misses_the_target(planned):
    profile, result, arts = planned
    from planner.report.optimize_report import _bar_label

    alts = [a for a in result.alternatives if a.kind != "optimized" and a.feasible and a.cost_per_month_usd]
    assert alts
    dearer = result.cost_per_month_usd / 0.768  # the plan costs 23.2% less than this alternative
    missed = alts[0].model_copy(update={"slo_attainment": 0.947, "verified": False, "cost_per_month_usd": dearer})
    met = alts[0].model_copy(update={"slo_attainment": 0.99, "verified": True, "cost_per_month_usd": dearer})
    for alt, below in ((missed, True), (met, False)):
        r = result.model_copy(update={"alternatives": [alt], "slo_target": 0.95})
        md = render_markdown(r)
        bullet = next(line for line in md.splitlines() if line.startswith("- Against "))
        assert ("SLO 94.7%, below the 95% target): this plan costs 23.2% less." in bullet) is below
        assert ("below the 95% target" in _bar_label(alt, 0.95)) is below
        assert ("below" in bullet) is below
    cheaper = alts[0].model_copy(update={"cost_per_month_usd": result.cost_per_month_usd / 1.828})
    md = render_markdown(result.model_copy(update={"alternatives": [cheaper]}))
    assert "this plan costs 82.8% more." in md and "saves -" not in md


def test_answer_has_the_tail_latency_and_the_p99_limits(planned):
    _, result, _ = planned
    v = result.verification.model_copy(update={"slo_misses": 120, "misses_after_cold_start": 90,
                                               "ttft_p99_s": 52.0, "p99_limits_missed": ["p99 TTFT 52 s is above the 10 s limit"]})
    md = render_markdown(result.model_copy(update={"verification": v, "slo_ttft_p99_seconds": 10.0, "verified": False}))
    answer = md[md.index("## Answer"):md.index("## Finance")]
    assert "10.00% of requests miss the SLO (120 of 1,200)" in answer
    assert "p99 TTFT 52 s (SLO 2 s)" in answer
    assert "90 of the misses waited for a worker to start" in answer
    assert "NOT met: p99 TTFT 52 s is above the 10 s limit" in answer


def test_deploy_settings_render_vllm_names():
    entry = {
        "gpu": "l40s", "tensor_parallel_size": 2, "billing": "serverless", "count": 3,
        "engine": {"model": "llama-3.1-8b", "tensor_parallel_size": 2, "max_model_len": 8192,
                   "gpu_memory_utilization": 0.9, "max_num_seqs": 256, "max_num_batched_tokens": 8192,
                   "block_size": 16, "enable_chunked_prefill": True, "quantization": "awq",
                   "kv_cache_dtype": "fp8", "precision": None},
        "serverless": {"active_workers": 1, "max_workers": 3, "idle_timeout_seconds": 5, "scaler": "queue-delay",
                       "scaler_value": 4, "max_concurrency_per_worker": 30, "cached_model": False},
    }
    cmd = deploy.vllm_serve_command(entry)
    comment, serve = cmd.split("\n", 1)
    assert comment.startswith("# --async-scheduling") and "host-overhead" in comment
    # AWQ serves a pre-quantized checkpoint; vLLM reads its format from the checkpoint (no flag).
    assert serve.startswith("vllm serve hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4")
    assert serve.rstrip().endswith("--async-scheduling")  # the timing model's zero host overhead needs it
    assert subprocess.run(["bash", "-n"], input=cmd, text=True).returncode == 0  # a valid shell command
    for flag in ("--tensor-parallel-size 2", "--max-model-len 8192", "--gpu-memory-utilization 0.9",
                 "--kv-cache-dtype fp8", "--enable-chunked-prefill"):
        assert flag in cmd
    assert "--quantization" not in cmd
    env = deploy.serverless_env(entry)
    assert env["MAX_MODEL_LEN"] == "8192" and env["GPU_MEMORY_UTILIZATION"] == "0.9"
    assert env["TENSOR_PARALLEL_SIZE"] == "2" and env["ENABLE_CHUNKED_PREFILL"] == "true"
    assert env["ASYNC_SCHEDULING"] == "true" and env["MAX_CONCURRENCY"] == "30"
    ep = deploy.endpoint_settings(entry)
    assert ep["workersMin"] == 1 and ep["workersMax"] == 3 and ep["scalerType"] == "QUEUE_DELAY"
    assert ep["gpuIds"] == "ADA_48_PRO" and ep["gpuCount"] == 2


def test_markdown_marks_a_plan_that_misses_the_slo(planned):
    profile, result, arts = planned
    missed = result.model_copy(update={"verified": False, "slo_attainment": 0.5, "notes": ["missed"]})
    md = render_markdown(missed)
    assert "MISSES" in md and "> missed" in md


# ---------------------------------------------------------------- planner/report/files.py ---

from planner.report import files  # noqa: E402


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_output_path_is_refused(name):
    with pytest.raises(PlannerError, match="the path is empty"):
        files.check_output_path(name, "--records")
    with pytest.raises(PlannerError, match="the path is empty"):
        files.check_output_dir(name, "--report")


def test_output_path_checks(tmp_path):
    with pytest.raises(PlannerError, match=r"is a folder; give a file name inside it, e\.g\. .*out\.csv"):
        files.check_output_path(tmp_path, "--records")
    with pytest.raises(PlannerError, match="folder .* does not exist"):
        files.check_output_path(tmp_path / "missing" / "x.csv", "--records")
    (tmp_path / "f").write_text("x")
    with pytest.raises(PlannerError, match="is not a folder"):
        files.check_output_path(tmp_path / "f" / "x.csv", "--records")
    with pytest.raises(PlannerError, match="ending in .png"):
        files.check_output_path(tmp_path / "x.jpg", "--plot", suffix=".png")
    assert files.check_output_path(tmp_path / "x.PNG", "--plot", suffix=".png") == tmp_path / "x.PNG"
    with pytest.raises(PlannerError, match="no file name"):
        files.check_output_path(str(tmp_path / "new") + "/", "--records")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_refused_up_front(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(PlannerError, match="not writable"):
            files.check_output_path(ro / "x.csv", "--records")
        with pytest.raises(PlannerError, match="not writable"):
            files.check_output_dir(ro / "rep", "--report")
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize(("umask", "executable", "mode"), [(0o022, False, 0o644), (0o027, False, 0o640),
                                                           (0o022, True, 0o755)])
def test_atomic_write_gives_normal_permissions(tmp_path, umask, executable, mode):
    old = os.umask(umask)
    try:
        out = files.write_text(tmp_path / "a.txt", "hello\n", executable=executable)
    finally:
        os.umask(old)
    assert out.read_text() == "hello\n"
    assert stat.S_IMODE(out.stat().st_mode) == mode  # not mkstemp's 0600


def test_atomic_write_leaves_nothing_when_the_writer_or_the_os_fails(tmp_path, monkeypatch):
    target = tmp_path / "a.csv"
    target.write_text("old")

    def boom(fh):
        fh.write("half")
        raise ValueError("writer failed")

    with pytest.raises(ValueError):
        files.write_atomic(target, boom)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(PlannerError, match=r"--records .*a\.csv: cannot write it \(No space left on device\)"):
        files.write_text(target, "new", what="--records")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_atomic_write_temp_file_is_in_the_destination_folder(tmp_path, monkeypatch):
    seen = []
    real = files.os.replace

    def spy(src, dst):
        seen.append((Path(src).parent, Path(dst).parent))
        return real(src, dst)

    monkeypatch.setattr(files.os, "replace", spy)
    files.write_bytes(tmp_path / "x.bin", b"\x00\x01")
    assert seen == [(tmp_path, tmp_path)]


def test_report_text_renders_from_plan_json_alone(planned, tmp_path):
    """The result carries the SLO thresholds, headroom, demand percentile and typed deploy settings,
    so a plan.json read back words the report exactly as the run did with its profile."""
    profile, result, arts = planned
    assert (result.slo_ttft_seconds, result.slo_tpot_seconds) == (profile.slo.ttft_seconds, profile.slo.tpot_seconds)
    assert (result.headroom, result.demand_percentile) == (profile.optimizer.headroom, profile.optimizer.demand_percentile)
    for typed, raw in zip(result.deploy_settings, result.deploy, strict=True):
        assert (typed.gpu, typed.billing, typed.count) == (raw["gpu"], raw["billing"], raw["count"])
        assert typed.engine is not None and typed.engine.max_num_seqs == raw["engine"]["max_num_seqs"]
    write_report(result, arts, tmp_path / "with", profile=profile)
    loaded = OptimizeResult.model_validate_json((tmp_path / "with" / "plan.json").read_text())
    write_report(loaded, arts, tmp_path / "alone")  # the plots may use the run's per-request data
    assert (tmp_path / "alone" / "report.md").read_text() == (tmp_path / "with" / "report.md").read_text()


def test_rounds_name_a_shared_flex_tightening_once() -> None:
    flex = {f"gpu{i}-tp1-flex": 0.7 for i in range(5)}
    assert _tightened_text({"a-tp1-pod": 0.85, **flex}) == "a-tp1-pod x0.85, 5 flex pools x0.70"
    assert _tightened_text({"a-tp1-flex": 0.7, "b-tp1-flex": 0.7}) == "a-tp1-flex x0.70, b-tp1-flex x0.70"
    assert _tightened_text({}) == "-"
