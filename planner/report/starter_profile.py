"""`planner init`'s starter profile: a commented YAML a user edits into their own planning question.

The traffic shapes are the shipped profiles' (steady: Poisson; bursty: on-off bursts; diurnal: a
24-hour sinusoid; closed: users in a closed loop), with the Azure-conversation size fit they share; the candidate GPUs are the
catalog's serverless-capable ones on which the model fits at some tensor_parallel_size up to 8.
"""

from __future__ import annotations

import json
from pathlib import Path

from planner.errors import PlannerError
from planner.report.files import check_output_path, write_text

_ARRIVALS = {
    "steady": (
        "Poisson arrivals at a constant rate",
        ["process: poisson", "rate_per_s: 4.0               # mean requests per second"],
        3600,
    ),
    "bursty": (
        "on-off bursts: a base rate, and bursts at a higher one",
        ["process: onoff", "base_rate_per_s: 1.5          # between bursts",
         "burst_rate_per_s: 12           # during a burst", "mean_burst_seconds: 60         # bursts last this long on average",
         "mean_gap_seconds: 300          # and come this far apart on average"],
        3600,
    ),
    "diurnal": (
        "a day with busy afternoons and quiet nights (sinusoid, peak / trough = 6)",
        ["process: diurnal", "mean_rate_per_s: 2.0           # the day's mean rate",
         "peak_to_trough: 6              # busiest hour / quietest hour",
         "peak_hour: 14                  # clock hour of the peak"],
        86400,
    ),
    "closed": (
        "a fixed number of users in a closed loop (each sends its next request after the answer and some think time)",
        ["process: closed", "users: 50                      # concurrent users",
         "think_time_seconds: {distribution: exponential, mean_seconds: 5}   # an assumption: set your users' own"],
        3600,
    ),
}
TRAFFIC_KINDS = tuple(_ARRIVALS)

_GPUS = ("h100-sxm", "a100-80gb-sxm", "l40s", "l4", "rtx-4090")


def _candidates(model: str) -> tuple[list[str], list[int]]:
    """The default GPUs the model fits on (at TP <= 8) and the TPs it needs on them."""
    from planner.inputs.catalog import get_gpu  # noqa: PLC0415
    from planner.memory import min_tensor_parallel_size, resolve_engine_args  # noqa: PLC0415
    from planner.inputs.models import get_model  # noqa: PLC0415

    spec = get_model(model)
    gpus, tps = [], set()
    for gpu_id in _GPUS:
        gpu = get_gpu(gpu_id)
        tp = min_tensor_parallel_size(spec, gpu, resolve_engine_args(gpu, {"max_model_len": 8192}, spec))
        if tp is not None:
            gpus.append(gpu_id)
            tps.add(tp)
    if not gpus:
        raise PlannerError(f"{model} fits none of {', '.join(_GPUS)} at tensor_parallel_size up to 8: "
                           "pick GPUs yourself (`planner size --model ...`) and edit candidates")
    return gpus, sorted(tps)


def starter_profile(model: str = "llama-3.1-8b", traffic: str = "bursty") -> str:
    """The commented starter profile for a model (preset id or config.json path) and a traffic kind."""
    if traffic not in _ARRIVALS:
        raise PlannerError(f"--traffic {traffic!r}: use one of {', '.join(TRAFFIC_KINDS)}")
    gpus, tps = _candidates(model)
    what, arrivals, horizon = _ARRIVALS[traffic]
    arrival_lines = "\n".join(f"    {line}" for line in arrivals)
    return f"""\
# A planning question for `planner optimize --profile <this file>`. Every field is documented
# in docs/profile.md and the README's annotated profile; check it with `planner traffic -p <file>`.
# Editors can validate it against `planner schema` (the profile's JSON Schema).
name: my-{traffic}
description: {json.dumps(f"{model} with {what}")}

model:
  name: {json.dumps(model):<30}# a preset (`planner catalog --models`) or a config.json path
  # repo: org/checkpoint          # the Hugging Face repository to deploy (needed for config.json
  #                               # models, or a quantization without a known checkpoint)
  # quantization: none            # none | awq | gptq | fp8 | w8a8 | mxfp4
  # kv_cache_dtype: auto          # auto | bf16 | fp16 | fp32 | fp8

serving:
  max_model_len: 8192             # longest prompt + output of one request, tokens

traffic:
  arrivals:                       # {what}
{arrival_lines}
  sizes:                          # prompt and output lengths (the Azure conversation trace's fit)
    distribution: lognormal
    prompt_tokens: {{median: 1020, p90: 2734}}
    output_tokens: {{median: 129, p90: 424, max_tokens: 1000}}
  horizon_seconds: {horizon}            # simulated time; costs are scaled to a month

slo:                              # a request meets the SLO when both hold
  ttft_seconds: 2.0               # time to first token
  tpot_seconds: 0.1               # time per output token after the first
  attainment: 0.95                # share of requests that must meet it

candidates:                       # what the optimizer may choose from
  gpus: [{", ".join(gpus)}]
  tensor_parallel_sizes: [{", ".join(str(t) for t in tps)}]
  billing: [pod, serverless]
"""


def write_starter_profile(text: str, path: str | Path, force: bool = False) -> Path:
    """Write the profile to `path`; an existing file only with `force` (never half-written)."""
    target = check_output_path(path, "--out", example="profile.yaml")
    if target.exists() and not force:
        raise PlannerError(f"--out {target} exists: pass --force to overwrite it, or pick another name")
    write_text(target, text)
    return target
