"""Number formats: bytes per weight element, quantization formats as model hubs ship them, and
which tensor-core rate a GEMM runs at.

Two ways to say how weights are stored:
- `precision` alone (quantization "none"): every parameter at that width. This is the seed guide's
  rule of thumb (params x bytes/param): 70B at int4 is 35 GB "in theory".
- `quantization` (awq, gptq, fp8, w8a8, mxfp4): the format as published checkpoints carry it: the
  linear layers quantized (with their group-wise scales and zeros), the embeddings, lm_head, norms,
  biases and MoE routers left in 16 bit. This is the "in practice" figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from planner.errors import PlannerError

WeightDtype = Literal["fp32", "bf16", "fp16", "fp8", "int8", "int4", "mxfp4"]
Quantization = Literal["none", "awq", "gptq", "fp8", "w8a8", "mxfp4"]
KvCacheDtype = Literal["auto", "bf16", "fp16", "fp32", "fp8"]
ComputeDtype = Literal["bf16", "fp16", "fp32", "fp8", "int8"]

WEIGHT_DTYPES: tuple[str, ...] = get_args(WeightDtype)
QUANTIZATIONS: tuple[str, ...] = get_args(Quantization)
KV_CACHE_DTYPES: tuple[str, ...] = get_args(KvCacheDtype)

# Bytes per element. NOTE: mxfp4 (OCP Microscaling spec v1.0) packs 32 4-bit (E2M1) elements with
# one shared 8-bit (E8M0) scale: (32 x 4 + 8) / 32 = 4.25 bits = 0.53125 bytes per element.
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    "mxfp4": 4.25 / 8,
}

# Width of the unquantized ("16-bit") tensors that quantized checkpoints keep: embeddings, lm_head,
# norms, biases, routers. HF checkpoints of awq/gptq/fp8/w8a8/mxfp4 models ship these in bf16/fp16.
HIGH_PRECISION_BYTES = 2.0


@dataclass(frozen=True)
class QuantFormat:
    """How one quantization format stores a linear layer's weights.

    Attributes:
        name: the format id.
        weight_dtype: element width of the quantized weights.
        group_size: elements sharing one scale (and zero point); 0 = per-channel/per-tensor scales
            whose size is negligible next to the weights.
        group_overhead_bytes: bytes of scale + zero point per group.
        experts_only: only the MoE routed experts are quantized (gpt-oss's mxfp4 checkpoints).
        compute_dtype: which tensor-core rate the GEMMs run at.
        expert_intermediate_align: the engine pads each expert's intermediate size up to a
            multiple of this when it loads the weights (0 = no padding).
    """

    name: str
    weight_dtype: str
    group_size: int
    group_overhead_bytes: float
    experts_only: bool
    compute_dtype: str
    expert_intermediate_align: int = 0

    @property
    def bytes_per_weight(self) -> float:
        """Average bytes per quantized weight element, group scales and zeros included."""
        base = DTYPE_BYTES[self.weight_dtype]
        if self.group_size <= 0:
            return base
        return base + self.group_overhead_bytes / self.group_size


# NOTE: AWQ and GPTQ checkpoints (AutoAWQ / AutoGPTQ, group_size 128, the hub default) store per
# group of 128 input elements one fp16 scale (2 B) and one 4-bit zero point packed 8 per int32
# (0.5 B): 2.5 B per 128 weights, +0.0195 B/weight (+3.9% over 0.5 B). GPTQ also keeps g_idx, one
# int32 per input channel (4/out_features B per weight, ~0.1%), left out here.
QUANT_FORMATS: dict[str, QuantFormat] = {
    "awq": QuantFormat("awq", "int4", 128, 2.5, False, "fp16"),
    "gptq": QuantFormat("gptq", "int4", 128, 2.5, False, "fp16"),
    # fp8 checkpoints (e.g. DeepSeek-V3's 128x128 block scales, or per-channel "FP8-dynamic"):
    # one fp32 scale per 128x128 block is 4/16384 B per weight: negligible; we count 1 B.
    "fp8": QuantFormat("fp8", "fp8", 0, 0.0, False, "fp8"),
    # w8a8 (int8 weights and activations, per-channel scales): 1 B per weight.
    "w8a8": QuantFormat("w8a8", "int8", 0, 0.0, False, "int8"),
    # gpt-oss ships its MoE experts in mxfp4 and everything else in bf16 (openai/gpt-oss model
    # card). The shared E8M0 scale is already inside DTYPE_BYTES["mxfp4"]. NOTE: vLLM's mxfp4 MoE
    # pads the expert intermediate size to a multiple of 256 for its kernels
    # (vllm/model_executor/layers/quantization/mxfp4.py, Mxfp4MoEMethod.create_weights): 2880 ->
    # 3072. With it gpt-oss-20b/120b load as 13.45/64.5 GiB, as vLLM v0.11 logs on H100 (13.47 and
    # 64.38 GiB, llm-d/llm-d-benchmark config_explorer/empirical-vllm-memory-results.md).
    "mxfp4": QuantFormat("mxfp4", "mxfp4", 0, 0.0, True, "bf16", expert_intermediate_align=256),
}

# A plain precision without a quantization format: which rate its GEMMs run at. int4 without a
# format is weight-only (dequantized to 16 bit for the GEMM); mxfp4 likewise on pre-Blackwell GPUs.
_PRECISION_COMPUTE: dict[str, str] = {
    "fp32": "fp32",
    "bf16": "bf16",
    "fp16": "fp16",
    "fp8": "fp8",
    "int8": "int8",
    "int4": "fp16",
    "mxfp4": "bf16",
}

# Which plain precision a quantization format implies (for checking a --precision given with it).
_QUANT_PRECISION: dict[str, str] = {
    "awq": "int4",
    "gptq": "int4",
    "fp8": "fp8",
    "w8a8": "int8",
    "mxfp4": "mxfp4",
}


def check_weight_dtype(precision: str) -> str:
    """Return `precision` if it is a known weight dtype, else raise PlannerError."""
    if precision not in DTYPE_BYTES:
        raise PlannerError(
            f"unknown precision {precision!r}: use one of {', '.join(WEIGHT_DTYPES)}"
        )
    return precision


def check_quantization(quantization: str) -> str:
    """Return `quantization` if known, else raise PlannerError."""
    if quantization not in QUANTIZATIONS:
        raise PlannerError(
            f"unknown quantization {quantization!r}: use one of {', '.join(QUANTIZATIONS)}"
        )
    return quantization


def check_kv_cache_dtype(kv_cache_dtype: str) -> str:
    """Return `kv_cache_dtype` if known, else raise PlannerError."""
    if kv_cache_dtype not in KV_CACHE_DTYPES:
        raise PlannerError(
            f"unknown kv_cache_dtype {kv_cache_dtype!r}: use one of {', '.join(KV_CACHE_DTYPES)}"
        )
    return kv_cache_dtype


def check_precision_with_quantization(precision: str | None, quantization: str) -> None:
    """Reject a --precision that contradicts the quantization format (e.g. awq with fp8)."""
    check_quantization(quantization)
    if precision is None or quantization == "none":
        return
    check_weight_dtype(precision)
    implied = _QUANT_PRECISION[quantization]
    if precision != implied:
        raise PlannerError(
            f"quantization {quantization!r} stores {implied} weights, not {precision}: "
            f"drop --precision or set it to {implied}"
        )


def activation_dtype(precision: str | None) -> str:
    """Dtype of activations (and of the KV cache under kv_cache_dtype "auto").

    Serving engines run activations in the checkpoint's 16-bit dtype whatever the weight format
    (vLLM's --dtype auto); only an fp32 or fp16 precision changes it.
    """
    if precision in ("fp32", "fp16"):
        return precision
    return "bf16"


def activation_precision(
    precision: str | None, quantization: str, default_dtype: str | None = None
) -> str | None:
    """The precision that sets the activation dtype (see `activation_dtype`), one rule for memory
    and timing.

    Plain weights (quantization "none"): the --precision given, else `default_dtype` (pass the
    checkpoint's dtype where the caller counts it; None keeps vLLM's 16-bit default). A quantized
    format: None, as the engine runs its activations in 16 bit whatever the weight width (and every
    precision a format allows, fp8/int8/int4/mxfp4, maps to bf16 anyway).

    Args:
        precision: the weight dtype asked for, or None.
        quantization: the resolved checkpoint format ("none" for plain weights).
        default_dtype: the model's checkpoint dtype, used when precision is None.
    """
    if quantization != "none":
        return None
    return precision if precision is not None else default_dtype


def kv_cache_bytes_per_element(kv_cache_dtype: str, precision: str | None = None) -> float:
    """Bytes per cached K or V element: "auto" follows the activation dtype (vLLM's behaviour)."""
    check_kv_cache_dtype(kv_cache_dtype)
    if kv_cache_dtype == "auto":
        return DTYPE_BYTES[activation_dtype(precision)]
    return DTYPE_BYTES[kv_cache_dtype]


def compute_dtype(precision: str | None, quantization: str = "none") -> ComputeDtype:
    """Which tensor-core rate a GEMM runs at for these weights.

    awq/gptq (and a bare int4) are weight-only: the kernels dequantize to fp16 and multiply in fp16.
    fp8 runs fp8 GEMMs, w8a8 int8 GEMMs; mxfp4 experts run bf16 GEMMs on Hopper and older.
    """
    check_quantization(quantization)
    if quantization != "none":
        return QUANT_FORMATS[quantization].compute_dtype  # type: ignore[return-value]
    if precision is None:
        return "bf16"
    check_weight_dtype(precision)
    return _PRECISION_COMPUTE[precision]  # type: ignore[return-value]
