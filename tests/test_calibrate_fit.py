"""The fit recovers known corrections from simulated 'measured' runs with 3% noise, says when it is
weakly determined, cross-checks by leave-one-file-out, and refuses runs of another setup."""

from __future__ import annotations

import json

import numpy as np
import pytest

from planner.calibrate.calibrate import CalibrationRequest, calibrate, setup_builder
from planner.inputs.bench_calibration import Corrections
from planner.calibrate.replay import semaphore_send_times, send_times
from planner.inputs.catalog import get_gpu
from planner.errors import PlannerError
from calibrate_helpers import measure, recovery_runs, run_doc

TRUTH = Corrections(gemm_scale=1.25, attention_scale=0.8, step_overhead_s=0.003)
REQUEST = CalibrationRequest(gpu="h200", model="llama-3.1-8b", serving={"max_model_len": 32768},
                             bootstrap_samples=100, leave_one_out=False)


def _files(tmp_path, docs, noise=0.03, seed=11, detailed=False):
    _, build = setup_builder(REQUEST, get_gpu("h200"))
    return measure(docs, tmp_path, build, TRUTH, noise=noise, rng=np.random.default_rng(seed), detailed=detailed)


# Seed 13 is a typical seed, not a lucky one: bench/calibrate_fit.py fits the same four runs for
# seeds 1-20 (lengths drawn with seed s, noise with 100 + s) and recovers every correction within
# 5% on all twenty (the worst by 4.4%, attention); seed 13's largest error (attention, -1.4%) lies
# near their median, 1.7% (docs/calibrate.md has the table).
RECOVERY_SEED = 13


def test_fit_recovers_each_correction_within_5_percent(tmp_path):
    paths = _files(tmp_path, recovery_runs(np.random.default_rng(RECOVERY_SEED)), seed=100 + RECOVERY_SEED,
                   detailed=True)
    result = calibrate(REQUEST, paths)
    got = result.fit.corrections
    for name in ("gemm_scale", "attention_scale", "step_overhead_s"):
        assert getattr(got, name) == pytest.approx(getattr(TRUTH, name), rel=0.05), name
    fit = result.fit
    assert fit.rms_error_after < 0.05 < fit.rms_error_before
    for f in fit.files:  # the error falls on every file
        assert np.sqrt(np.mean(np.square(list(f.after_error.values())))) < \
            np.sqrt(np.mean(np.square(list(f.before_error.values()))))
    assert not fit.weakly_determined and fit.bootstrap_samples == 100
    for v in fit.values:  # the bootstrap interval holds the fitted value
        assert v.low <= v.value <= v.high
    block = result.calibration
    assert block.base_gpu == "h200" and result.calibrated_id == "h200-calibrated"
    assert block.valid_for.model == "llama-3.1-8b" and block.valid_for.tensor_parallel_size == 1
    assert [r.sha256 for r in block.results] == [json.loads(p.read_text()) and __import__("hashlib").sha256(p.read_bytes()).hexdigest() for p in paths]


def test_one_file_is_weakly_determined(tmp_path):
    rng = np.random.default_rng(3)
    paths = _files(tmp_path, [run_doc(48, 2000, 100, concurrency=8, rng=rng)])
    result = calibrate(REQUEST.model_copy(update={"fit": ("gemm_scale", "step_overhead_s")}), paths)
    assert result.fit.weakly_determined and result.fit.bootstrap_samples == 0
    assert any("weakly determined" in w for w in result.warnings)


def _one_detailed_file(tmp_path, noise):
    """One closed-loop --save-detailed file (per-request ttfts and latencies)."""
    _, build = setup_builder(REQUEST, get_gpu("h200"))
    doc = run_doc(32, 1500, 60, concurrency=8, rng=np.random.default_rng(7))
    return measure([doc], tmp_path, build, TRUTH, noise=noise, rng=np.random.default_rng(11), detailed=True)


def test_bootstrap_resamples_the_requests_of_a_detailed_file(tmp_path):
    """One --save-detailed file: the interval comes from its requests (paired measured/simulated),
    holds the fitted value, and widens with the per-request noise."""
    request = REQUEST.model_copy(update={"fit": ("gemm_scale",), "bootstrap_samples": 200})
    widths = []
    for noise in (0.01, 0.10):
        folder = tmp_path / f"n{noise}"
        folder.mkdir()
        fit = calibrate(request, _one_detailed_file(folder, noise)).fit
        (value,) = fit.values
        assert fit.bootstrap_samples == 200 and "requests of the one file" in fit.uncertainty_method
        assert fit.files[0].resampled_requests and fit.weakly_determined  # one file stays weak
        assert value.low <= value.value <= value.high
        widths.append(value.high - value.low)
    assert widths[1] > 2 * widths[0]


def test_metrics_not_fitted_are_shown_not_used(tmp_path):
    paths = _one_detailed_file(tmp_path, 0.03)
    request = REQUEST.model_copy(update={"fit": ("gemm_scale",), "metrics": ("tpot", "itl"), "bootstrap_samples": 0})
    fit = calibrate(request, paths).fit
    (f,) = fit.files
    assert f.fitted_metrics == ["tpot", "itl"] and set(f.before_error) == {"ttft", "tpot", "itl"}
    used = [f.after_error["tpot"], f.after_error["itl"]]
    assert fit.rms_error_after == pytest.approx(float(np.sqrt(np.mean(np.square(used)))))
    with pytest.raises(PlannerError, match="--metrics"):
        calibrate(request.model_copy(update={"metrics": ("e2el",)}), paths)


def test_leave_one_file_out_with_three_files(tmp_path):
    rng = np.random.default_rng(4)
    docs = [run_doc(24, 3000, 40, concurrency=2, rng=rng), run_doc(48, 800, 120, concurrency=16, rng=rng),
            run_doc(32, 8000, 60, concurrency=8, rng=rng)]
    paths = _files(tmp_path, docs)
    request = REQUEST.model_copy(update={"leave_one_out": True, "fit": ("gemm_scale", "step_overhead_s"),
                                         "bootstrap_samples": 0})
    result = calibrate(request, paths)
    assert all(f.held_out_error is not None for f in result.fit.files)
    assert result.fit.rms_error_held_out is not None
    assert result.fit.rms_error_held_out >= result.fit.rms_error_after - 1e-9


@pytest.mark.parametrize("change, pattern", [
    ({"model_id": "meta-llama/Llama-3.1-70B-Instruct"}, "model_id"),
    ({"gpu": "H100"}, "gpu="),
    ({"tensor_parallel_size": "2"}, "tensor_parallel_size=2"),
    ({"quantization": "fp8"}, "quantization="),
])
def test_a_file_of_another_setup_is_refused(tmp_path, change, pattern):
    doc = {**run_doc(4, 100, 10, concurrency=1, rng=np.random.default_rng(0)), **change}
    path = tmp_path / "other.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PlannerError, match=pattern) as err:
        calibrate(REQUEST, [path])
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_matching_metadata_is_accepted(tmp_path):
    doc = run_doc(8, 500, 20, concurrency=2, rng=np.random.default_rng(0),
                  metadata={"gpu": "NVIDIA H200", "tensor_parallel_size": "1", "vllm_version": "0.24.0"})
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(doc))
    result = calibrate(REQUEST.model_copy(update={"fit": ("step_overhead_s",), "bootstrap_samples": 0}), [path])
    assert result.calibration.valid_for.vllm_versions == ["0.24.0"]


def test_send_times_follow_vllm_client():
    rng = np.random.default_rng(0)
    due = send_times(1000, 5.0, 0.5, rng)
    assert due[-1] == pytest.approx(200.0) and np.all(np.diff(due) >= 0)
    gaps = np.diff(due)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(np.sqrt(2.0), rel=0.15)  # cv = 1/sqrt(shape)
    assert np.all(send_times(5, None, 1.0, rng) == 0)


def test_semaphore_send_times_first_come_first_served():
    due = np.zeros(5)
    finished = np.array([3.0, 1.0, 4.0, 5.0, 9.0])
    # Two slots: requests 0 and 1 go at once; 2 takes the slot freed at 1.0 (request 1), 3 the one
    # freed at 3.0 (request 0), 4 the one freed at 4.0 (request 2).
    assert semaphore_send_times(due, finished, 2).tolist() == [0.0, 0.0, 1.0, 3.0, 4.0]
    assert semaphore_send_times(due, finished, None).tolist() == [0.0] * 5


def test_closed_loop_replay_matches_the_simulators_closed_loop(tmp_path):
    """A --max-concurrency run with rate inf is the simulator's closed loop of that many users."""
    from planner.calibrate.bench_results import read_result_file
    from planner.calibrate.replay import make_replay, predict
    from planner.scenario import bench_closed_loop

    request = CalibrationRequest(gpu="h100-sxm", model="llama-3.1-8b", serving={"max_model_len": 8192})
    base, _ = setup_builder(request, get_gpu("h100-sxm"))
    doc = {**run_doc(48, 1000, 100, concurrency=16, rng=np.random.default_rng(0)),
           "input_lens": [1000] * 48, "output_lens": [100] * 48}
    path = tmp_path / "c16.json"
    path.write_text(json.dumps(doc))
    mine = predict(make_replay(read_result_file(path)[0]), base)
    loop = bench_closed_loop("llama-3.1-8b", "h100-sxm", 1, users=16, prompt_tokens=1000, output_tokens=100,
                             requests_per_user=3, setup=base)
    assert mine["ttft"] == pytest.approx(loop.mean_ttft_s) and mine["tpot"] == pytest.approx(loop.mean_tpot_s)
