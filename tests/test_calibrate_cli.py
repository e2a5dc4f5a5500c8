"""`planner calibrate` end to end: the GPU YAML it writes is a catalog entry every command accepts
(--gpu, candidates.gpus, prices:), its corrections reach the step times, reports say so, and bad
input is one line, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from calibrate_helpers import measure, run_doc
from planner.calibrate.calibrate import CalibrationRequest, setup_builder
from planner.cli import main
from planner.inputs.bench_calibration import Corrections
from planner.inputs.catalog import get_gpu, load_gpu_yaml
from planner.inputs.models import get_model
from planner.inputs.profile import load_profile
from planner.perf import StepTimeModel
from planner.perf.corrections import corrected

DATA = Path(__file__).parent / "data" / "vllm_bench"
TRUTH = Corrections(gemm_scale=1.2, attention_scale=1.0, step_overhead_s=0.002)


def _run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.argv", ["planner", *args])
    with pytest.raises(SystemExit) as exc:
        main()
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


@pytest.fixture(scope="module")
def result_files(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("runs")
    request = CalibrationRequest(gpu="h100-sxm", model="llama-3.1-8b", serving={"max_model_len": 8192})
    _, build = setup_builder(request, get_gpu("h100-sxm"))
    rng = np.random.default_rng(2)
    docs = [run_doc(8, 4000, 32, concurrency=1, rng=rng, metadata={"gpu": "H100-SXM", "vllm_version": "0.24.0"}),
            run_doc(64, 1000, 100, concurrency=32, rng=rng, metadata={"gpu": "H100-SXM", "vllm_version": "0.24.0"})]
    return measure(docs, folder, build, TRUTH, noise=0.03, rng=rng)


@pytest.fixture(scope="module")
def calibrated_yaml(result_files, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gpu") / "my-gpu.yaml"
    mp = pytest.MonkeyPatch()
    mp.setattr("sys.argv", ["planner", "calibrate", *map(str, result_files), "--gpu", "h100-sxm", "--model",
                            "llama-3.1-8b", "--max-model-len", "8192", "--fit", "gemm_scale,step_overhead_s",
                            "--bootstrap", "50", "--out", str(out)])
    with pytest.raises(SystemExit) as exc:
        main()
    mp.undo()
    assert exc.value.code in (0, None)
    return out


def test_calibrate_writes_a_gpu_yaml_the_catalog_loads(calibrated_yaml):
    gpu = load_gpu_yaml(calibrated_yaml)
    block = gpu.benchmark_calibration
    assert gpu.id == "h100-sxm-calibrated" and block is not None and block.base_gpu == "h100-sxm"
    assert block.valid_for.model == "llama-3.1-8b" and block.valid_for.vllm_versions == ["0.24.0"]
    assert len(block.results) == 2 and all(len(r.sha256) == 64 for r in block.results)
    assert block.corrections.gemm_scale == pytest.approx(1.2, rel=0.05)
    assert block.corrections.step_overhead_s == pytest.approx(0.002, rel=0.05)
    text = calibrated_yaml.read_text()
    assert text.startswith("# GPU catalog entry written by `planner calibrate`")
    assert yaml.safe_load(text)["pod_prices"] == [p.model_dump(mode="json") for p in get_gpu("h100-sxm").pod_prices]


def test_calibrated_gpu_step_times_carry_the_corrections(calibrated_yaml):
    spec, gpu = get_model("llama-3.1-8b"), load_gpu_yaml(calibrated_yaml)
    base = StepTimeModel.create(spec, get_gpu("h100-sxm"))
    model = StepTimeModel.create(spec, gpu)
    ctx = np.array([500, 1500, 3000])
    assert model.step_seconds(ctx, [(512, 0)]) == pytest.approx(
        corrected(base, gpu.benchmark_calibration.corrections).step_seconds(ctx, [(512, 0)]))
    assert any("runs on the user's calibration" in n for n in model.notes)
    assert not any("WARNING" in n for n in model.notes)
    elsewhere = StepTimeModel.create(get_model("qwen2.5-7b"), gpu)
    assert any("outside what it was fitted on: model qwen2.5-7b (fitted on llama-3.1-8b)" in n for n in elsewhere.notes)


def test_corrections_scale_their_terms_exactly():
    base = StepTimeModel.create(get_model("mixtral-8x7b"), get_gpu("h100-sxm"), 2)
    c = Corrections(gemm_scale=1.7, attention_scale=0.6, step_overhead_s=0.002)
    model = corrected(base, c)
    ctx, chunks = np.array([100, 5000, 300]), [(512, 1000)]
    b0, b1 = base.breakdown(ctx, chunks), model.breakdown(ctx, chunks)
    assert b1.gemm_s == pytest.approx(1.7 * b0.gemm_s) and b1.attention_s == pytest.approx(0.6 * b0.attention_s)
    assert model.step_seconds(ctx, chunks) == pytest.approx(
        b0.total_s + 0.7 * b0.gemm_s - 0.4 * b0.attention_s + 0.002)
    run = model.decode_run_seconds(ctx, 5)
    assert run == pytest.approx([model.step_seconds(ctx + k) for k in range(5)])


def test_profile_takes_the_yaml_in_candidates_and_prices(calibrated_yaml, monkeypatch, capsys):
    profile = calibrated_yaml.parent / "p.yaml"
    profile.write_text(yaml.safe_dump({
        "model": {"name": "llama-3.1-8b"}, "serving": {"max_model_len": 8192},
        "traffic": {"arrivals": {"process": "poisson", "rate_per_s": 1.0}, "horizon_seconds": 60,
                    "sizes": {"distribution": "fixed", "prompt_tokens": 500, "output_tokens": 50}},
        "slo": {"ttft_seconds": 2.0, "tpot_seconds": 0.1},
        "candidates": {"gpus": [calibrated_yaml.name]},
        "prices": [{"gpu": calibrated_yaml.name, "pod_usd_per_hour": 1.5, "source": "negotiated"}],
    }))
    loaded = load_profile(profile)
    assert loaded.candidates.gpus == [str(calibrated_yaml.resolve())]
    code, out, err = _run(monkeypatch, capsys, "simulate", "--profile", str(profile), "--gpu", str(calibrated_yaml),
                          "--billing", "pod")
    assert code == 0, err
    assert "h100-sxm-calibrated runs on the user's calibration" in out and "1.5" in out


@pytest.mark.parametrize("make, fragment", [
    (lambda d: "{not json", "not JSON"),
    (lambda d: (DATA / "other-tool-ascend-2025-02-throughput.json").read_text(), "not a `vllm bench serve"),
    (lambda d: json.dumps({**d, "completed": 0}), "completed is 0"),
    (lambda d: json.dumps({**d, "gpu": "A100-80GB"}), "gpu="),
    (lambda d: json.dumps({**d, "model_id": "Qwen/Qwen2.5-7B-Instruct"}), "model_id"),
])
def test_bad_input_is_one_line_exit_2_nothing_written(result_files, tmp_path, monkeypatch, capsys, make, fragment):
    bad = tmp_path / "bad.json"
    bad.write_text(make(json.loads(result_files[0].read_text())))
    out_yaml = tmp_path / "never.yaml"
    code, out, err = _run(monkeypatch, capsys, "calibrate", str(result_files[1]), str(bad), "--gpu", "h100-sxm",
                          "--model", "llama-3.1-8b", "--max-model-len", "8192", "--out", str(out_yaml))
    assert code == 2 and out == "" and err.count("\n") == 1 and fragment in err and str(bad) in err
    assert not out_yaml.exists()


def test_json_output_is_one_object(result_files, monkeypatch, capsys):
    code, out, _ = _run(monkeypatch, capsys, "calibrate", str(result_files[1]), "--gpu", "h100-sxm", "--model",
                        "llama-3.1-8b", "--max-model-len", "8192", "--fit", "step_overhead_s", "--json")
    data = json.loads(out)
    assert code == 0 and data["calibrated_id"] == "h100-sxm-calibrated"
    assert data["fit"]["weakly_determined"] is True and data["fit"]["files"][0]["after_error"]


def test_other_kernel_table_version_is_warned(calibrated_yaml):
    from planner.perf.corrections import calibration_assumptions

    gpu = load_gpu_yaml(calibrated_yaml)
    block = gpu.benchmark_calibration.model_copy(update={"step_model_vllm_version": "0.24.0"})
    gpu = gpu.model_copy(update={"benchmark_calibration": block})
    same = calibration_assumptions(gpu, "llama-3.1-8b", 1, None, "none", "auto", "0.24.0")
    other = calibration_assumptions(gpu, "llama-3.1-8b", 1, None, "none", "auto", "0.25.0")
    assert len(same) == 1 and "runs on the user's calibration" in same[0]
    assert "step-time tables of vLLM 0.25.0 (fitted on tables of vLLM 0.24.0)" in other[1]


def test_corrected_equals_create_with_the_scales_multiplied():
    spec, gpu = get_model("llama-3.1-8b"), get_gpu("h100-sxm")
    base = StepTimeModel.create(spec, gpu)
    c = Corrections(gemm_scale=1.3, attention_scale=0.7, step_overhead_s=0.001)
    direct = StepTimeModel.create(spec, gpu, gemm_scale=base.gemm_scale * 1.3, attention_scale=base.attention_scale * 0.7,
                                  step_overhead_s=base.host_s + 0.001)
    ctx = np.array([200, 4000, 900])
    assert corrected(base, c).step_seconds(ctx, [(256, 100)]) == pytest.approx(direct.step_seconds(ctx, [(256, 100)]))
    assert corrected(base, c).decode_run_seconds(ctx, 4) == pytest.approx(direct.decode_run_seconds(ctx, 4))


def test_unknown_metric_is_one_line_exit_2(result_files, tmp_path, monkeypatch, capsys):
    out_yaml = tmp_path / "never.yaml"
    code, out, err = _run(monkeypatch, capsys, "calibrate", str(result_files[0]), "--gpu", "h100-sxm", "--model",
                          "llama-3.1-8b", "--metrics", "tpot,e2el", "--out", str(out_yaml))
    assert code == 2 and out == "" and err.count("\n") == 1 and "--metrics: e2el" in err
    assert not out_yaml.exists()
