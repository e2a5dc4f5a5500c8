"""Reading `vllm bench serve --save-result` files: real files of several vLLM versions, the layouts
of others rebuilt field by field, and every bad input as one PlannerError line naming the file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from planner.calibrate.bench_results import (
    gpu_names_match,
    model_names_match,
    read_result_file,
    read_result_files,
    request_latencies,
    request_lengths,
)
from planner.errors import PlannerError

DATA = Path(__file__).parent / "data" / "vllm_bench"


# ---------------------------------------------------------------------- real files


def test_real_2025_02_summary_only_file_parses():
    (run,) = read_result_file(DATA / "ascend-2025-02-serving-qps4.json")
    assert run.model_id.endswith("Meta-Llama-3-8B-Instruct")
    assert run.request_rate == 4.0 and run.burstiness == 1.0 and run.max_concurrency is None
    assert run.mean_ttft_ms == pytest.approx(189.12410335615277)
    assert run.mean_tpot_ms == pytest.approx(87.64925255216323)
    assert run.completed is None and run.input_lens is None
    assert "best_of" in run.other_fields and run.metadata == {}
    assert len(run.sha256) == 64
    # No counts, no lengths: the fit cannot replay it and says which field is missing.
    with pytest.raises(PlannerError, match="'completed' is missing"):
        request_lengths(run)


def test_real_file_with_infinite_rate_string():
    (run,) = read_result_file(DATA / "ascend-2025-02-serving-qpsinf.json")
    assert math.isinf(run.request_rate) and run.open_rate_per_s is None and not run.closed_loop


def test_real_2025_07_detailed_concurrency_file_parses():
    (run,) = read_result_file(DATA / "fork-2025-07-concurrency64-detailed.json")
    assert run.max_concurrency == 64 and run.closed_loop
    assert run.completed == 1024 and run.duration == pytest.approx(304.5056021010969)
    assert "request_goodput:" in run.other_fields  # that version's key, trailing colon and all
    lengths = request_lengths(run)
    assert not lengths.estimated and "per-request" in lengths.source
    assert sum(lengths.prompt_tokens) == run.total_input_tokens == 254149
    assert sum(lengths.output_tokens) == run.total_output_tokens == 230364
    assert run.mean_itl_ms == pytest.approx(78.0277280900556)


# The 2025-04 files of vLLM 0.8.3's benchmark_serving.py (run by vLLM's nightly-benchmark scripts):
# Llama-3.3-70B-Instruct at TP 8 on 8 A100 40GB SXM (Azure Standard_ND96asr_v4), 200 ShareGPT
# prompts, Poisson arrivals at 1, 4, 16 req/s and all at once. Per-request lists always written.
A100_RUNS = [("qps01", 1.0, 42722, 65.25777634499718), ("qps04", 4.0, 42449, 50.32546663501307),
             ("qps16", 16.0, 42770, 59.57789878501217), ("qpsinf", math.inf, 42398, 360.36056903502185)]


@pytest.mark.parametrize("tag, rate, output_tokens, ttft_ms", A100_RUNS)
def test_real_2025_04_nightly_suite_files_parse(tag, rate, output_tokens, ttft_ms):
    (run,) = read_result_file(DATA / f"a100x8-2025-04-llama33-70b-tp8-{tag}.json")
    assert run.model_id == "meta-llama/Llama-3.3-70B-Instruct" and run.backend == "vllm"
    assert run.request_rate == rate and run.max_concurrency is None and run.burstiness == 1.0
    assert run.completed == 200 and run.metadata == {} and "request_goodput:" in run.other_fields
    lengths = request_lengths(run)
    assert lengths.per_request and sum(lengths.prompt_tokens) == run.total_input_tokens == 42659
    assert sum(lengths.output_tokens) == run.total_output_tokens == output_tokens
    assert run.mean_ttft_ms == pytest.approx(ttft_ms)
    # The per-request TTFTs are the file's own: their mean is its mean_ttft_ms. The itls were
    # stripped (SOURCE.md), so there are no per-request decode times.
    ttft_s, decode_s = request_latencies(run)
    assert decode_s is None and len(ttft_s) == 200
    assert ttft_s.mean() * 1e3 == pytest.approx(run.mean_ttft_ms, rel=1e-9)


def test_request_latencies_from_itls_or_latencies(tmp_path):
    (run,) = read_result_file(_write(tmp_path, "r.json", LAYOUT_2024))
    ttft_s, decode_s = request_latencies(run)  # decode: the sum of each request's gaps
    assert ttft_s.tolist() == [0.05] * 3 and decode_s == pytest.approx([0.19, 0.29, 0.09])
    (run,) = read_result_file(_write(tmp_path, "s.json", {**LAYOUT_2026, "itls": None}))
    ttft_s, decode_s = request_latencies(run)  # latencies - ttfts; the failed request left out
    assert len(ttft_s) == 3 and decode_s == pytest.approx([0.99] * 3)
    (run,) = read_result_file(_write(tmp_path, "t.json", {**LAYOUT_2026, "ttfts": [0.1, 0.1]}))
    ttft_s, decode_s = request_latencies(run)  # a list of the wrong length is not used
    assert ttft_s is None and len(decode_s) == 3


@pytest.mark.parametrize("name", ["other-tool-ascend-2025-02-throughput.json",
                                  "other-tool-vllm-nightly-2024-08-summary.json"])
def test_real_files_of_other_tools_are_refused(name):
    with pytest.raises(PlannerError, match="not a `vllm bench serve --save-result` result") as err:
        read_result_file(DATA / name)
    assert name in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------------- other versions' layouts


def _write(tmp_path: Path, name: str, data) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


# The 2024 layout (vLLM 0.5-0.6): best_of, use_beam_search, input_throughput, per-request lists
# always written, no burstiness/max_concurrency. Numbers are ours.
LAYOUT_2024 = {
    "date": "20240907-082731", "backend": "vllm", "model_id": "meta-llama/Llama-3.1-8B-Instruct",
    "tokenizer_id": "meta-llama/Llama-3.1-8B-Instruct", "best_of": 1, "use_beam_search": False,
    "num_prompts": 3, "request_rate": "inf", "duration": 2.0, "completed": 3,
    "total_input_tokens": 300, "total_output_tokens": 60, "request_throughput": 1.5,
    "input_throughput": 150.0, "output_throughput": 30.0, "mean_ttft_ms": 50.0,
    "median_ttft_ms": 50.0, "std_ttft_ms": 1.0, "p99_ttft_ms": 52.0, "mean_tpot_ms": 10.0,
    "median_tpot_ms": 10.0, "std_tpot_ms": 0.5, "p99_tpot_ms": 11.0, "mean_itl_ms": 10.0,
    "median_itl_ms": 10.0, "std_itl_ms": 0.5, "p99_itl_ms": 11.0, "mean_latency_ms": 250.0,
    "input_lens": [100, 120, 80], "output_lens": [20, 30, 10],
    "ttfts": [0.05, 0.05, 0.05], "itls": [[0.01] * 19, [0.01] * 29, [0.01] * 9],
    "generated_texts": ["", "", ""], "errors": ["", "", ""],
}

# The late-2025/2026 layout (vLLM 0.11+): endpoint_type, label, failed, peak figures, metadata
# pairs as top-level strings, e2el statistics, latencies/start_times in the detailed lists.
LAYOUT_2026 = {
    "date": "20260816-160853", "endpoint_type": "openai", "backend": "openai", "label": None,
    "model_id": "meta-llama/Llama-3.1-8B-Instruct", "tokenizer_id": "meta-llama/Llama-3.1-8B-Instruct",
    "num_prompts": 4, "gpu": "H200", "tensor_parallel_size": "1", "vllm_version": "0.24.0",
    "random_input_len": "1000", "random_output_len": "100",
    "request_rate": 2.0, "burstiness": 0.5, "max_concurrency": 8, "duration": 3.1, "completed": 3,
    "failed": 1, "total_input_tokens": 3000, "total_output_tokens": 300, "request_throughput": 1.0,
    "request_goodput": None, "output_throughput": 100.0, "total_token_throughput": 1100.0,
    "input_lens": [1000, 1000, 1000, 1000], "output_lens": [100, 100, 0, 100],
    "ttfts": [0.05, 0.05, 0.0, 0.05], "itls": [[0.01] * 99, [0.01] * 99, [], [0.01] * 99],
    "latencies": [1.04, 1.04, 0.0, 1.04], "start_times": [0.0, 0.5, 1.0, 1.5],
    "queue_times": [0.0, 0.0, 0.0, 0.0], "errors": ["", "", "timeout", ""],
    "max_output_tokens_per_s": 120.0, "max_concurrent_requests": 2, "rtfx": 0.0,
    "mean_ttft_ms": 50.0, "median_ttft_ms": 50.0, "std_ttft_ms": 0.0, "p99_ttft_ms": 50.0,
    "mean_tpot_ms": 10.0, "median_tpot_ms": 10.0, "std_tpot_ms": 0.0, "p99_tpot_ms": 10.0,
    "mean_itl_ms": 10.0, "median_itl_ms": 10.0, "std_itl_ms": 0.0, "p99_itl_ms": 10.0,
    "mean_e2el_ms": 1040.0, "p99.9_e2el_ms": 1040.0, "spec_decode_acceptance_rate": 0.0,
}


def test_2024_layout_parses_with_per_request_lengths(tmp_path):
    (run,) = read_result_file(_write(tmp_path, "r.json", LAYOUT_2024))
    lengths = request_lengths(run)
    assert lengths.prompt_tokens == [100, 120, 80] and lengths.output_tokens == [20, 30, 10]
    assert run.max_concurrency is None and run.burstiness == 1.0


def test_2026_layout_metadata_and_failed_requests(tmp_path):
    (run,) = read_result_file(_write(tmp_path, "r.json", LAYOUT_2026))
    assert run.gpu == "H200" and run.tensor_parallel_size() == 1 and run.vllm_version == "0.24.0"
    assert run.metadata["random_input_len"] == "1000"
    assert "max_concurrent_requests" in run.other_fields and "p99.9_e2el_ms" in run.other_fields
    assert run.burstiness == 0.5 and run.open_rate_per_s == 2.0 and run.closed_loop
    lengths = request_lengths(run)  # the failed request (error "timeout") is left out
    assert lengths.prompt_tokens == [1000] * 3 and lengths.output_tokens == [100] * 3


def test_random_lengths_from_metadata_when_not_detailed(tmp_path):
    summary = {k: v for k, v in LAYOUT_2026.items()
               if k not in ("input_lens", "output_lens", "ttfts", "itls", "latencies", "start_times",
                            "queue_times", "errors")}
    (run,) = read_result_file(_write(tmp_path, "r.json", summary))
    lengths = request_lengths(run)
    assert lengths.prompt_tokens == [1000] * 3 and "metadata" in lengths.source


def test_mean_lengths_from_totals_are_marked_estimated(tmp_path):
    summary = {k: v for k, v in LAYOUT_2024.items() if k not in ("input_lens", "output_lens")}
    (run,) = read_result_file(_write(tmp_path, "r.json", summary))
    lengths = request_lengths(run)
    assert lengths.estimated and lengths.prompt_tokens == [100] * 3 and lengths.output_tokens == [20] * 3


def test_appended_file_holds_one_run_per_line(tmp_path):
    text = json.dumps(LAYOUT_2024) + "\n" + json.dumps({**LAYOUT_2024, "request_rate": 4.0}) + "\n"
    runs = read_result_file(_write(tmp_path, "appended.json", text))
    assert [r.source.rsplit("#", 1)[1] for r in runs] == ["1", "2"]
    assert runs[1].request_rate == 4.0 and runs[0].sha256 == runs[1].sha256


# ---------------------------------------------------------------------- bad input: one line each


@pytest.mark.parametrize("content, pattern", [
    ("{not json", "not JSON"),
    ("", "not JSON"),
    (json.dumps({"elapsed_time": 7.0, "num_requests": 3}), "another|not a `vllm bench serve"),
    (json.dumps([{"benchmark": {}, "model": {}, "metric": {}}]), "PyTorch-benchmark-format"),
    (json.dumps({**LAYOUT_2024, "completed": 0}), "completed is 0"),
    (json.dumps({**LAYOUT_2024, "ramp_up_strategy": "linear"}), "ramp-up"),
    (json.dumps({**LAYOUT_2024, "request_rate": "fast"}), "request_rate"),
    (json.dumps({**LAYOUT_2024, "max_concurrency": -2}), "max_concurrency"),
])
def test_bad_files_are_one_line_naming_the_file(tmp_path, content, pattern):
    path = _write(tmp_path, "bad.json", content)
    with pytest.raises(PlannerError) as err:
        read_result_file(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert any(p in message for p in pattern.split("|"))


def test_missing_file_and_no_files():
    with pytest.raises(PlannerError, match="no such file"):
        read_result_file("/nonexistent/run.json")
    with pytest.raises(PlannerError, match="no result files"):
        read_result_files([])


def test_bad_metadata_tp_is_named(tmp_path):
    (run,) = read_result_file(_write(tmp_path, "r.json", {**LAYOUT_2026, "tensor_parallel_size": "two"}))
    with pytest.raises(PlannerError, match="tensor_parallel_size"):
        run.tensor_parallel_size()


# ---------------------------------------------------------------------- names


@pytest.mark.parametrize("recorded, ok", [
    ("H200", True), ("NVIDIA H200", True), ("h200", True), ("nvidia-h200-sxm-141gb", True),
    ("H100", False), ("NVIDIA H100 80GB HBM3", False), ("A100", False),
])
def test_gpu_names_against_h200(recorded, ok):
    assert gpu_names_match(recorded, "h200", "NVIDIA H200 SXM 141GB") is ok


@pytest.mark.parametrize("recorded, ok", [
    ("NVIDIA H100 80GB HBM3", True), ("H100-SXM", True), ("h100-sxm", True),
    ("H100 PCIe", False), ("H100 NVL", False), ("H200", False),
])
def test_gpu_names_against_h100_sxm(recorded, ok):
    assert gpu_names_match(recorded, "h100-sxm", "NVIDIA H100 SXM 80GB") is ok


def test_model_names():
    from planner.inputs.models import _preset_alias

    def resolve(name):
        return name.lower() if name.lower() in ("llama-3.1-8b", "llama-3.1-70b") else _preset_alias(name.lower())

    assert model_names_match("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b", resolve)
    assert model_names_match("/models/Llama-3.1-8B-Instruct/", "llama-3.1-8b", resolve)
    assert not model_names_match("meta-llama/Llama-3.1-70B-Instruct", "llama-3.1-8b", resolve)
    assert not model_names_match("/root/models/Meta-Llama-3-8B-Instruct", "llama-3.1-8b", resolve)
    assert model_names_match("/data/my-finetune", "/configs/my-finetune", lambda name: None)


def test_model_names_of_config_json_paths():
    def none(name):
        return None

    assert model_names_match("/model/meta-llama/Llama-2-7b-chat-hf", "/cfg/Llama-2-7b-chat-hf/config.json", none)
    assert model_names_match("/model/meta-llama/Llama-2-7b-chat-hf", "/cfg/Llama-2-7b-chat-hf.json", none)
    assert not model_names_match("/model/meta-llama/Llama-2-7b-chat-hf", "/cfg/Llama-2-13b/config.json", none)
