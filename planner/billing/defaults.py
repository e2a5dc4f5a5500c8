"""Billing defaults, each with its source (`BILLING_DEFAULTS`); estimated where nothing published backs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# The month convention lives with the units (traffic and billing both scale to it).


# A span a few ULPs above a whole second must not be billed one second more.
_ROUNDING_SLACK_S = 1e-9

WorkerKind = Literal["pod", "active", "flex"]
PodCloud = Literal["secure", "community"]


# ----------------------------------------------------------------------------------------------
# Defaults and their sources
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourcedDefault:
    """A default setting with where it comes from; `estimated` when nothing published backs it."""

    value: Any
    source: str
    estimated: bool
    # (model preset id, GPU id) a measured default comes from, and why it may differ elsewhere:
    # assumptions() calls it an estimate for any other model or GPU.
    measured_on: tuple[str, str] | None = None
    elsewhere: str = ""


_RUNPOD_ENDPOINT_DOC = (
    "runpod/docs serverless/endpoints/endpoint-configurations.mdx @a900806e (2026-08-20)"
)
_TENSORFUSE = (
    "Tensorfuse, 'Reducing GPU Cold Start Time when using vLLM' (2025-09-01), "
    "https://tensorfuse.io/docs/blogs/reducing_gpu_cold_start: Llama-3.1-8B-Instruct bf16 on L40S"
)

BILLING_DEFAULTS: dict[str, SourcedDefault] = {
    "pod_cloud": SourcedDefault("secure", "the planner's choice: secure cloud unless the profile says otherwise", False),
    "pod_provider": SourcedDefault("runpod", "the catalog's main provider (every GPU file lists Runpod prices)", False),
    "pod_billing_granularity_seconds": SourcedDefault(
        1.0, "runpod/docs pods/pricing.mdx @a900806: pods are billed per second", False
    ),
    "pod_provisioning_delay_seconds": SourcedDefault(
        60.0, "estimated: no published pod start time; one minute to pull a cached image and load", True
    ),
    "active_workers": SourcedDefault(0, _RUNPOD_ENDPOINT_DOC + ": active (min) workers default 0", False),
    "max_workers": SourcedDefault(3, _RUNPOD_ENDPOINT_DOC + ": max workers default 3", False),
    "idle_timeout_seconds": SourcedDefault(5.0, _RUNPOD_ENDPOINT_DOC + ": idle timeout default 5 s", False),
    "scaler": SourcedDefault("queue-delay", _RUNPOD_ENDPOINT_DOC + ": queue delay is the default scaler", False),
    "scaler_value": SourcedDefault(
        4.0, _RUNPOD_ENDPOINT_DOC + ": queue-delay threshold default 4 s (request-count: requests per worker)", False
    ),
    "scaler_value_request_count": SourcedDefault(
        1.0, _RUNPOD_ENDPOINT_DOC + ": request-count scaler, 1 request per worker is the most responsive", False
    ),
    "max_concurrency_per_worker": SourcedDefault(
        30,
        "runpod/docs serverless/vllm/environment-variables.mdx @a900806: vLLM worker MAX_CONCURRENCY 30",
        False,
    ),
    "container_start_seconds": SourcedDefault(
        5.0, "estimated: no published container start time for a cached worker image", True
    ),
    # 16.06e9 B of Llama-3.1-8B bf16 weights loaded in 18 s from a local cache: 0.89e9 B/s.
    # Cross-check: ServerlessLLM (Fu et al., OSDI'24, arXiv 2401.14351 §2) reports LLaMA-2-70B
    # (~130 GB) loading in 84 s with existing loaders (~1.5e9 B/s) and 3.6-8.2x faster with its
    # own loader; a remote download (their example: 5 GB/s network) comes on top when not cached.
    "model_load_bytes_per_second": SourcedDefault(
        0.89e9, _TENSORFUSE + ": weights loaded in 18 s from a warm local cache (16.06 GB / 18 s)", False,
        measured_on=("llama-3.1-8b", "l40s"),
        elsewhere="the load rate is a property of the host's storage, not of the model",
    ),
    # Same measurement, cached column: Dynamo bytecode 10 s + graph compilation 13 s + CUDA graph
    # capture 7 s + engine init and imports 34 s = 64 s. Uncached it was 200 s.
    "engine_warmup_seconds": SourcedDefault(
        64.0, _TENSORFUSE + ": compile cache warm, 10 + 13 + 7 + 34 s (one model, one GPU)", False,
        measured_on=("llama-3.1-8b", "l40s"),
        elsewhere="the warm-up grows with model size and CUDA graph capture",
    ),
    "cached_model": SourcedDefault(
        False,
        "conservative choice: Runpod enables FlashBoot by default but publishes neither its latency "
        "nor how often it applies (runpod/docs endpoint-configurations.mdx), so a full cold start is assumed unless set",
        False,
    ),
    "cached_start_seconds": SourcedDefault(
        4.2,
        "estimated: Runpod says cached models start in 'a few seconds' (no number); 4.2 s is a "
        "third-party, unverified p99 first-request cold start (aiapiplaybook.com)",
        True,
    ),
}


def default(name: str) -> Any:
    """The default value of billing setting `name` (see BILLING_DEFAULTS for its source)."""
    return BILLING_DEFAULTS[name].value


