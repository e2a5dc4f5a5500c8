"""Result documents made by the simulator: what `vllm bench serve --save-result --save-detailed`
would have written if the GPU behaved exactly as the step-time model with chosen corrections, plus
measurement noise. For checking the fit (tests, bench/calibrate_fit.py, docs/calibrate.md): a
fit must recover the corrections these documents were made with."""

from __future__ import annotations

from typing import Any

import numpy as np

from planner.calibrate.bench_results import VllmBenchResult
from planner.calibrate.replay import latency_means, make_replay, simulate_requests


def run_doc(n: int, isl: int, osl: int, *, concurrency: int | None = None, rate: float | None = None,
            burstiness: float = 1.0, rng: np.random.Generator,
            model_id: str = "meta-llama/Llama-3.1-8B-Instruct",
            metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """A result document in vLLM's layout (2026 fields) with per-request lengths spread +-20%
    around isl/osl; its latencies are placeholders until `measured`."""
    prompt = rng.integers(int(isl * 0.8), int(isl * 1.2) + 1, n).tolist()
    output = rng.integers(max(2, int(osl * 0.8)), int(osl * 1.2) + 1, n).tolist()
    return {
        "date": "20261201-120000", "endpoint_type": "openai", "backend": "openai", "label": None,
        "model_id": model_id, "tokenizer_id": model_id, "num_prompts": n, **(metadata or {}),
        "request_rate": rate if rate is not None else "inf", "burstiness": burstiness,
        "max_concurrency": concurrency, "duration": 1.0, "completed": n, "failed": 0,
        "total_input_tokens": sum(prompt), "total_output_tokens": sum(output),
        "input_lens": prompt, "output_lens": output, "errors": [""] * n,
        "mean_ttft_ms": 1.0, "mean_tpot_ms": 1.0, "mean_itl_ms": 1.0,
    }


def recovery_runs(rng: np.random.Generator) -> list[dict[str, Any]]:
    """The four runs the recovery check fits (llama-3.1-8b on one h200; tests and
    bench/calibrate_fit.py), each pinning a correction the others barely see:

    - one user on 6k-token prompts, 32 requests: small steps, so TPOT is GEMM + overhead, and
      enough requests that 3% noise per request leaves ~0.5% on the means;
    - 32 users on 1k-token prompts: large decode batches (GEMM-bound);
    - 32 users on 16k-token prompts with 256-token outputs: decode steps that read 0.5M tokens of
      KV cache (attention-bound), long enough that prefill chunks do not dominate them;
    - bursty open arrivals (6 req/s, burstiness 0.5): the timed-arrival path of the replay.
    """
    return [
        run_doc(32, 6000, 48, concurrency=1, rng=rng),
        run_doc(96, 1000, 200, concurrency=32, rng=rng),
        run_doc(64, 16000, 256, concurrency=32, rng=rng),
        run_doc(80, 1500, 150, rate=6.0, burstiness=0.5, rng=rng),
    ]


def measured(doc: dict[str, Any], setup: Any, *, noise: float, rng: np.random.Generator,
             seed: int = 0, detailed: bool = False) -> dict[str, Any]:
    """`doc` with the mean TTFT/TPOT/ITL the simulator gives on `setup` (a ReplicaSetup with the
    true corrections applied), every request's TTFT and decode time multiplied by
    (1 + N(0, noise)), averaged over the replay's draws of the arrivals as the fit averages them
    (`seed` must be the fit's). `detailed`: also each request's `ttfts` and `latencies` (seconds,
    as --save-detailed writes them; averaged over the draws, and the means computed from them)."""
    run = VllmBenchResult(source="synthetic", sha256="0" * 64, **{
        k: v for k, v in doc.items() if k in VllmBenchResult.model_fields and k not in ("source", "sha256")})
    replay = make_replay(run.model_copy(update={"request_rate": float(doc["request_rate"])}), seed=seed)
    draws, ttfts, decodes = [], [], []
    for realization in range(len(replay.arrivals)):
        ttft, decode = simulate_requests(replay, setup, realization)
        ttft = ttft * (1.0 + rng.normal(0.0, noise, len(ttft)))
        decode = decode * (1.0 + rng.normal(0.0, noise, len(decode)))
        draws.append(latency_means(ttft, decode, replay.output_tokens))
        ttfts.append(ttft)
        decodes.append(decode)
    out = dict(doc)
    if detailed:
        ttft, decode = np.mean(ttfts, axis=0), np.mean(decodes, axis=0)
        draws = [latency_means(ttft, decode, replay.output_tokens)]
        out["ttfts"] = ttft.tolist()
        out["latencies"] = (ttft + decode).tolist()
    for metric in draws[0]:
        out[f"mean_{metric}_ms"] = float(np.mean([d[metric] for d in draws])) * 1e3
    return out
