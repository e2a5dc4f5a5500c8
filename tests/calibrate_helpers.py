"""Result files made by the simulator: what `vllm bench serve --save-result --save-detailed` would
have written if the GPU were exactly the model with chosen corrections, plus measurement noise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from planner.calibrate.bench_results import read_result_file
from planner.calibrate.corrections import Corrections
from planner.calibrate.replay import latency_means, make_replay, simulate_requests


def run_doc(n: int, isl: int, osl: int, *, concurrency: int | None = None, rate: float | None = None,
            burstiness: float = 1.0, rng: np.random.Generator, model_id: str = "meta-llama/Llama-3.1-8B-Instruct",
            metadata: dict[str, str] | None = None) -> dict[str, Any]:
    """A result document in vLLM's layout with per-request lengths spread +-20% around isl/osl;
    the latencies are filled in by `measure`."""
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


def measure(docs: list[dict[str, Any]], folder: Path, build_setup: Any, truth: Corrections, *,
            noise: float, rng: np.random.Generator, seed: int = 0) -> list[Path]:
    """Write each document with the latencies the simulator predicts under `truth`, every request's
    TTFT and decode time multiplied by (1 + N(0, noise)), averaged over the replay's draws of the
    arrivals as the fit averages them (`seed` must be the fit's): the 'measured' files."""
    setup = build_setup(truth)
    paths = []
    for k, doc in enumerate(docs):
        path = folder / f"run{k}.json"
        path.write_text(json.dumps(doc))
        (run,) = read_result_file(path)
        replay = make_replay(run, seed=seed)
        draws = []
        for realization in range(len(replay.arrivals)):
            ttft, decode = simulate_requests(replay, setup, realization)
            ttft = ttft * (1.0 + rng.normal(0.0, noise, len(ttft)))
            decode = decode * (1.0 + rng.normal(0.0, noise, len(decode)))
            draws.append(latency_means(ttft, decode, replay.output_tokens))
        for metric in draws[0]:
            doc[f"mean_{metric}_ms"] = float(np.mean([d[metric] for d in draws])) * 1e3
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths
