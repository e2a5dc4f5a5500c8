"""The step-time model's constants: everything `StepTimeModel.create` precomputes once per replica.

The model itself (planner/perf/step_time.py) only combines these with the step's batch.
"""


from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from planner.errors import PlannerError
from planner.inputs.calibration import PerfCalibration
from planner.inputs.models import param_counts
from planner.inputs.precision import (
    DTYPE_BYTES,
    QUANT_FORMATS,
    activation_dtype,
    activation_precision,
    compute_dtype,
)
from planner.memory import (
    check_tensor_parallel,
    kv_bytes_per_token_per_layer,
    kv_heads_per_gpu,
    weight_bytes_breakdown,
)

# NOTE: weight-only formats (AWQ/GPTQ int4, mxfp4 on pre-Blackwell GPUs, fp8 weights on a GPU
# without an fp8 tensor rate) dequantize inside the GEMM and multiply at the 16-bit rate. Marlin-
# style kernels stay near the 16-bit GEMM's throughput at large batch but below it (Frantar et al.,
# "MARLIN: Mixed-Precision Auto-Regressive Parallel Inference on Large Language Models",
# arXiv:2408.11743). Estimated: 80% of the 16-bit rate.
WEIGHT_ONLY_FLOP_FACTOR = 0.8
WEIGHT_ONLY_FLOP_FACTOR_SOURCE = "estimated: dequantizing GEMMs reach ~80% of the 16-bit rate (MARLIN, arXiv:2408.11743)"


# NOTE: tensor-parallel all-reduces. vLLM's one-shot custom all-reduce on 2-8 H100s takes
# 8.7-11.8 us for <= 32 KB and grows ~18-27 us per MB up to 1 MB (sgl-project/sglang PR #2904,
# "vllm" table, H100, TP 2/4/8): a fixed latency plus the bus bytes 2(N-1)/N x S at ~14% of one
# link direction. Large messages go through NCCL's ring, which gets most of the link (estimated
# 80%) after a longer start (estimated 25 us). The step takes whichever is faster.
# NOTE: a plain-PyTorch Llama layer runs ~33 small kernels besides its GEMMs: two RMSNorms of ~7
# elementwise/reduction kernels each (upcast, square, mean, rsqrt, scale, downcast, weight), rotary
# embeddings (~5 each for q and k), two K/V cache writes, attention, SiLU, multiply, two residual
# adds, a few layout copies. layer_fixed_s is their fitted total; one such kernel costs
# layer_fixed_s / 33 (~2.3 us on the H200). Estimated count.
SMALL_KERNELS_PER_LAYER = 33
# Other layer shapes run more of them (same accounting, estimated): each extra RMSNorm ~7 (Gemma-2's
# four norms per layer), per-head q/k norms 2 x 7 (Qwen3), MoE routing ~6 (router softmax, top-k,
# renormalise, permute, un-permute, weighted combine).
KERNELS_PER_NORM = 7
MOE_ROUTING_KERNELS = 6

# NOTE: fp8 GEMMs reach a smaller fraction of their peak than bf16 ones: maximum achievable matmul
# FLOPS (stas00/ml-engineering compute/accelerator/README.md @b9e29720, via facts/gpus.csv) are
# 70.9% vs 80.3% of peak on H100 SXM and 77.6% vs 83.6% on GH200: on average 0.906 of the bf16
# fraction. Applied to fp8 and int8 GEMMs.
FP8_FLOP_FRACTION_RATIO = 0.906

ALLREDUCE_LATENCY_S: dict[str, float] = {"nvlink": 9e-6, "pcie": 25e-6, "xgmi": 12e-6}
ALLREDUCE_LATENCY_SOURCE = (
    "nvlink 9 us: sgl-project/sglang PR #2904 (vLLM custom all-reduce on H100, TP 2-8, <= 32 KB); "
    "pcie 25 us and xgmi 12 us estimated"
)
ONE_SHOT_LINK_FRACTION = 0.14  # same source: 256 KB -> 1 MB slope at TP 2 (61 GB/s bus of 450)
RING_LINK_FRACTION = 0.8  # estimated
RING_LATENCY_S = 25e-6  # estimated

# Batches up to this many sequences sum their context lengths in Python (a list sum costs ~10 ns a
# sequence; a numpy reduction ~0.8 us a call whatever the size: bench/perf_speed.py).
_PY_SUM_MAX = 48
_add_reduce = np.add.reduce
_max_reduce = np.maximum.reduce
_min_reduce = np.minimum.reduce


def _read_only_arange(n: int) -> np.ndarray:
    steps = np.arange(n, dtype=np.float64)
    steps.flags.writeable = False
    return steps


# 0, 1, 2, ... as float64, shared by every model's decode runs (sliced, never written)
_STEP_INDEX = _read_only_arange(4096)


def _step_index(num_steps: int) -> np.ndarray:
    """0 .. num_steps - 1 (float64, read-only); the shared index grows to fit runs of up to 2**20 steps."""
    global _STEP_INDEX
    if num_steps > (1 << 20):
        return _read_only_arange(num_steps)
    if num_steps > _STEP_INDEX.size:
        _STEP_INDEX = _read_only_arange(max(num_steps, 2 * _STEP_INDEX.size))
    return _STEP_INDEX[:num_steps]


@dataclass(frozen=True)
class _Gemm:
    """One weight matrix as one GPU holds it: K x N, its bytes and its FLOP rate (FLOP/s)."""

    k: int
    n: int
    weight_bytes: float
    flop_rate: float  # achieved maximum = flop_fraction x peak x format factor


class StepBreakdown(BaseModel):
    """Where one step's time goes (per GPU of the tensor-parallel group). SI units."""

    model_config = ConfigDict(frozen=True)

    total_s: float = Field(description="the step's time, seconds")
    decode_sequences: int
    prefill_tokens: int
    tokens: int = Field(description="rows of the step's GEMMs: decode tokens + prefill tokens")
    weight_bytes: float = Field(description="weight bytes streamed per GPU (touched experts only)")
    kv_bytes: float = Field(description="K/V bytes read by attention per GPU")
    flops: float = Field(description="FLOPs per GPU: GEMMs + attention")
    gemm_s: float = Field(description="weight GEMMs, each the smooth roofline of stream and compute")
    gemm_stream_s: float = Field(description="what the GEMMs would take if only streaming counted")
    gemm_compute_s: float = Field(description="what the GEMMs would take if only FLOPs counted")
    attention_s: float
    activation_s: float = Field(description="elementwise activation traffic (norms, rope, SiLU)")
    layer_fixed_s: float = Field(description="fixed cost of the layers' small kernels")
    kernel_fixed_s: float = Field(description="fixed cost per GEMM kernel (inside gemm_s)")
    allreduce_s: float = Field(description="tensor-parallel all-reduces and the logits gather")
    host_overhead_s: float
    fixed_s: float = Field(description="all fixed costs: small kernels + per-GEMM-kernel + host")
    bound: Literal["memory", "compute"] = Field(
        description="whether the GEMMs are limited by weight streaming or by FLOPs"
    )



class StepTimeConstants:
    """The constants `step_time_constants` computes, declared for the type checker.

    `StepTimeModel.__init__(**constants)` sets them into the instance __dict__ (plain attribute
    reads on the hot path); these annotations have no runtime effect.
    """

    spec_name: str
    gpu_id: str
    tensor_parallel_size: int
    weight_format: str
    weight_bytes_total: int  # bytes, whole model
    weight_only: bool
    kv_cache_dtype: str
    notes: list[str]
    calibration: PerfCalibration
    n_layers: int
    n_dense: int  # layers without routed experts
    n_moe: int  # layers with routed experts
    n_full: int  # full-attention layers
    n_sliding: int  # sliding-window layers
    window: int  # sliding window, tokens (0: none)
    hidden: int
    act_bytes: float  # bytes per activation element
    dense_gemms: tuple[_Gemm, ...]
    moe_gemms: tuple[_Gemm, ...]
    head: _Gemm
    num_experts: int
    experts_per_tok: int
    expert_bytes_each: float  # bytes per GPU of one routed expert in one layer
    expert_flops_per_row: float
    expert_rate: float  # FLOP/s
    dense_width: int  # activation elements per token per dense layer
    quant_kernels: int
    extra_small_kernels: int
    moe_width: int  # activation elements per token per MoE layer
    q_heads_per_gpu: int
    attn_dims: int
    decode_flops_per_token: float
    decode_attn_s_per_token: float
    kv_tok_layer: float  # K/V bytes per token per layer per GPU
    kv_unit_tok_layer: float
    bw: float  # streaming bandwidth, bytes/s
    kernel_s: float
    roof_n: float
    layer_fixed_s: float
    act_s_per_token_width: float
    attn_rate: float  # FLOP/s
    unit_bw: float  # bytes/s
    split_kv: bool
    eager_s: float
    host_s: float
    ar_lat: float  # seconds
    ar_bw: float  # bytes/s


def step_time_constants(
    spec: Any,
    gpu: Any,
    tensor_parallel_size: int = 1,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
    *,
    host_overhead_s: float | None = None,
    attention_split_kv: bool | None = None,
) -> dict[str, Any]:
    """Precompute the constants of the step-time model (`StepTimeModel.create` wraps them).

    Args:
        spec: a ModelSpec (HF field names).
        gpu: a GpuSpec (bandwidth, `flops_per_s(dtype)`, interconnect, calibration).
        tensor_parallel_size: GPUs the model is split over (weights, KV heads and FLOPs split
            N ways; two all-reduces per layer).
        precision: weight dtype (None: the model's default).
        quantization: checkpoint format ("none": the model's default format when precision
            is None, else plain `precision` everywhere).
        kv_cache_dtype: "auto" follows the activations; "fp8" halves K/V bytes.
        host_overhead_s: engine host time per step; None: the calibration's setting.
        attention_split_kv: override the calibration's decode-attention kernel behaviour.
    Raises:
        PlannerError: a TP size the heads do not divide, an unknown format, a missing rate.
    """
    tp = int(tensor_parallel_size)
    check_tensor_parallel(spec, tp)  # PlannerError when the heads do not split over tp
    wb = weight_bytes_breakdown(spec, precision, quantization)  # resolves the defaults
    counts = param_counts(spec)
    quantization = wb.quantization
    weight_dtype = wb.precision
    cal: PerfCalibration = getattr(gpu, "calibration", None) or PerfCalibration()

    L = spec.num_hidden_layers
    H = spec.hidden_size
    uses_mla = spec.uses_mla
    qh = spec.num_attention_heads // tp
    kvh = kv_heads_per_gpu(spec, tp)  # replicated when tp exceeds the KV heads

    # ---- formats: achieved FLOP rates (bytes come from memory.weight_bytes_breakdown)
    act_precision = activation_precision(precision, quantization)  # quantization: resolved above
    act_dtype = activation_dtype(act_precision)
    act_bytes = DTYPE_BYTES[act_dtype]
    fmt = QUANT_FORMATS.get(quantization)
    notes: list[str] = []

    quantized_compute: set[str] = set()  # fp8/int8 GEMMs that run at their own rate

    def rate(dtype: str, weight_only: bool) -> float:
        factor = WEIGHT_ONLY_FLOP_FACTOR if weight_only else 1.0
        first: PlannerError | None = None
        for d in dict.fromkeys((dtype, "bf16", "fp16")):
            try:
                peak = gpu.flops_per_s(d)
            except PlannerError as err:
                first = first or err
                continue
            if d != dtype:
                factor = WEIGHT_ONLY_FLOP_FACTOR
                notes.append(f"{getattr(gpu, 'id', 'gpu')} has no {dtype} rate: weight-only GEMMs at the {d} rate")
            elif d in ("fp8", "int8"):
                quantized_compute.add(d)
                factor *= FP8_FLOP_FRACTION_RATIO
            return cal.value("flop_fraction") * peak * factor
        raise first if first else PlannerError(f"GPU {getattr(gpu, 'id', '?')!r} has no tensor-core rate")

    act_compute = "fp16" if act_dtype == "fp16" else "bf16"
    hi_rate = rate(act_compute, False)
    if fmt is None:  # plain precision everywhere
        weight_only = weight_dtype in ("int4", "mxfp4")
        lin_rate = rate(compute_dtype(weight_dtype, "none"), weight_only)
        expert_rate = head_rate = lin_rate
    else:
        weight_only = DTYPE_BYTES[fmt.weight_dtype] < DTYPE_BYTES.get(fmt.compute_dtype, 2.0)
        q_rate = rate(fmt.compute_dtype, weight_only)
        expert_rate = q_rate
        lin_rate = hi_rate if fmt.experts_only else q_rate
        head_rate = hi_rate

    def per_param(total_bytes: int, params: int) -> float:
        return total_bytes / params if params else 0.0

    attn_bpp = per_param(wb.attention_per_layer, counts.attention_per_layer)
    mlp_bpp = per_param(wb.dense_mlp_per_layer, counts.dense_mlp_per_layer)
    shared_bpp = per_param(wb.shared_experts_per_layer, counts.shared_experts_per_layer)

    def gemm(k: int, n: int, bytes_per: float, r: float) -> _Gemm:
        return _Gemm(k, n, k * n * bytes_per, r)

    # ---- attention projections, per GPU
    if uses_mla:
        dqk = spec.qk_nope_head_dim + spec.qk_rope_head_dim
        dv = spec.v_head_dim
        attn = []
        if spec.q_lora_rank:  # q_a is replicated on every rank, q_b split
            attn += [gemm(H, spec.q_lora_rank, attn_bpp, lin_rate),
                     gemm(spec.q_lora_rank, qh * dqk, attn_bpp, lin_rate)]
        else:
            attn += [gemm(H, qh * dqk, attn_bpp, lin_rate)]
        attn += [gemm(H, spec.kv_lora_rank + spec.qk_rope_head_dim, attn_bpp, lin_rate),
                 gemm(spec.kv_lora_rank, qh * (spec.qk_nope_head_dim + dv), attn_bpp, lin_rate),
                 gemm(qh * dv, H, attn_bpp, lin_rate)]
        qkv_width = qh * dqk + spec.kv_lora_rank + spec.qk_rope_head_dim
    else:
        d = spec.head_dim
        dqk = dv = d
        attn = [gemm(H, (qh + 2 * kvh) * d, attn_bpp, lin_rate), gemm(qh * d, H, attn_bpp, lin_rate)]
        qkv_width = (qh + 2 * kvh) * d

    def mlp(inter: int, bpp: float, r: float) -> list[_Gemm]:
        i = max(1, inter // tp)
        return [gemm(H, 2 * i, bpp, r), gemm(i, H, bpp, r)]  # fused gate/up, then down

    dense_gemms = attn + mlp(spec.intermediate_size, mlp_bpp, lin_rate) if spec.intermediate_size else attn
    n_moe = spec.num_moe_layers
    n_dense = L - n_moe
    E = spec.num_experts
    k_top = spec.num_experts_per_tok
    moe_gemms: list[_Gemm] = []
    expert_bytes_each = 0.0
    expert_flops_per_row = 0.0
    moe_width = 0
    if n_moe:
        shared_inter = spec.shared_expert_intermediate_size or spec.num_shared_experts * spec.moe_intermediate_size
        # the router is replicated on every rank
        moe_gemms = attn + [_Gemm(H, E, float(wb.router_per_layer), hi_rate)]
        if shared_inter:
            moe_gemms += mlp(shared_inter, shared_bpp, lin_rate)
        mi = max(1, spec.moe_intermediate_size // tp)
        expert_bytes_each = wb.expert_per_layer / tp
        expert_flops_per_row = 2 * 3 * H * mi
        moe_width = qkv_width + k_top * mi + shared_inter // tp
    dense_width = qkv_width + spec.intermediate_size // tp

    # NOTE: fp8/int8 GEMMs quantize their input activations first (a dynamic per-token scale:
    # one more small kernel per GEMM input, e.g. vLLM's scaled_fp8_quant). Each costs what one
    # small kernel of a layer costs: layer_fixed_s / SMALL_KERNELS_PER_LAYER (estimated).
    def quantized(gemms: list[_Gemm]) -> int:
        return sum(1 for g in gemms if g.flop_rate != hi_rate) if quantized_compute else 0

    # small kernels per step beyond the Llama layer the fit saw (see SMALL_KERNELS_PER_LAYER)
    extra_small = L * KERNELS_PER_NORM * (max(0, spec.norms_per_layer - 2) + (2 if spec.qk_norm else 0))
    extra_small += n_moe * MOE_ROUTING_KERNELS
    if extra_small:
        notes.append(f"{extra_small} extra small kernels per step for this shape's norms / MoE routing, "
                     f"each at layer_fixed_s / {SMALL_KERNELS_PER_LAYER} (estimated count)")
    if quantized_compute:
        notes.append(f"{'/'.join(sorted(quantized_compute))} GEMMs at {FP8_FLOP_FRACTION_RATIO} x the bf16 "
                     "achieved fraction (MAMF, stas00/ml-engineering) plus one activation-quantization "
                     "kernel per GEMM (estimated)")
    quant_kernels = n_dense * quantized(dense_gemms)
    if n_moe:
        quant_kernels += n_moe * (quantized(moe_gemms) + (2 if expert_rate != hi_rate and quantized_compute else 0))

    # ---- KV cache per token per layer, per GPU
    kv_tok_layer = kv_bytes_per_token_per_layer(spec, kv_cache_dtype, tp, act_precision)
    # one (sequence, KV head) unit of a non-split decode kernel; an MLA latent is one unit
    kv_unit_tok_layer = kv_tok_layer if uses_mla else kv_tok_layer / kvh
    n_sliding = spec.num_sliding_layers
    window = spec.sliding_window or 0
    n_full = L - n_sliding

    # ---- interconnect (tensor parallel)
    ar_lat = ar_bw = 0.0
    if tp > 1:
        ic = getattr(gpu, "interconnect", None)
        link = getattr(ic, "bandwidth_bytes_per_s", None)
        if link is None:
            raise PlannerError(
                f"GPU {getattr(gpu, 'id', '?')!r} has no interconnect bandwidth in the catalog: "
                f"add interconnect.bandwidth_bytes_per_s to its YAML or use tensor_parallel_size 1"
            )
        ar_bw = link / 2  # NOTE: the catalog gives the bidirectional aggregate; a ring sends one way
        latency = getattr(ic, "latency_s", None)
        if latency is None:
            ar_lat = ALLREDUCE_LATENCY_S.get(getattr(ic, "kind", "pcie"), ALLREDUCE_LATENCY_S["pcie"])
            notes.append(f"all-reduce latency {ar_lat * 1e6:.0f} us ({ALLREDUCE_LATENCY_SOURCE})")
        else:
            ar_lat = latency
        notes.append(
            f"all-reduces: one-shot at {ONE_SHOT_LINK_FRACTION:.0%} of one link direction (sglang PR #2904) "
            f"or ring at {RING_LINK_FRACTION:.0%} after {RING_LATENCY_S * 1e6:.0f} us (estimated), the faster"
        )

    bw_stream = cal.value("stream_bandwidth_fraction") * gpu.memory_bandwidth_bytes_per_s
    attn_peak = gpu.flops_per_s(act_compute) if _has_rate(gpu, act_compute) else gpu.flops_per_s("fp16")
    attn_rate = cal.value("attention_flop_fraction") * attn_peak
    split_kv = cal.attention_split_kv if attention_split_kv is None else bool(attention_split_kv)
    host = cal.value("host_overhead_s") if host_overhead_s is None else float(host_overhead_s)
    if host < 0:
        raise PlannerError(f"host_overhead_s must be >= 0, got {host}")

    # Decode attention per attended token per layer: its K/V bytes over the bandwidth, or its
    # FLOPs (2 per q head per dimension of QK and of PV) if larger. NOTE: MLA with absorbed
    # weights scores against the latent: QK over kv_lora_rank + rope dims, PV over kv_lora_rank,
    # ~240 FLOP per cached byte, so its decode attention is compute-bound (GQA: ~4 FLOP/byte).
    dec_dims = (2 * spec.kv_lora_rank + spec.qk_rope_head_dim) if uses_mla else dqk + dv
    decode_flops_per_token = 2.0 * qh * dec_dims
    decode_attn_s_per_token = max(kv_tok_layer / bw_stream, decode_flops_per_token / attn_rate)

    head_bytes = (wb.lm_head or wb.embedding) / tp  # tied: logits still stream the embedding
    head = _Gemm(H, max(1, spec.vocab_size // tp), head_bytes, head_rate)
    return dict(
        spec_name=spec.name,
        gpu_id=getattr(gpu, "id", "gpu"),
        tensor_parallel_size=tp,
        weight_format=quantization if fmt is not None else weight_dtype,
        weight_bytes_total=wb.total,
        weight_only=weight_only or any("weight-only" in n for n in notes),
        kv_cache_dtype=kv_cache_dtype,
        notes=notes,
        calibration=cal,
        n_layers=L,
        n_dense=n_dense,
        n_moe=n_moe,
        n_full=n_full,
        n_sliding=n_sliding,
        window=window,
        hidden=H,
        act_bytes=act_bytes,
        dense_gemms=tuple(dense_gemms),
        moe_gemms=tuple(moe_gemms),
        head=head,
        num_experts=E,
        experts_per_tok=k_top,
        expert_bytes_each=expert_bytes_each,
        expert_flops_per_row=expert_flops_per_row,
        expert_rate=expert_rate,
        dense_width=dense_width,
        quant_kernels=quant_kernels,
        extra_small_kernels=extra_small,
        moe_width=moe_width,
        q_heads_per_gpu=qh,
        attn_dims=dqk + dv,
        decode_flops_per_token=decode_flops_per_token,
        decode_attn_s_per_token=decode_attn_s_per_token,
        kv_tok_layer=kv_tok_layer,
        kv_unit_tok_layer=kv_unit_tok_layer,
        bw=bw_stream,
        kernel_s=cal.value("kernel_fixed_s"),
        roof_n=cal.value("roofline_exponent"),
        layer_fixed_s=cal.value("layer_fixed_s"),
        act_s_per_token_width=cal.value("activation_passes") * act_bytes / bw_stream,
        attn_rate=attn_rate,
        unit_bw=cal.value("attention_unit_bytes_per_s"),
        split_kv=split_kv,
        eager_s=cal.value("eager_launch_s_per_layer") * L,
        host_s=host,
        ar_lat=ar_lat,
        ar_bw=ar_bw,
    )

# ------------------------------------------------------------------ pieces (per step)



def _has_rate(gpu: Any, dtype: str) -> bool:
    try:
        gpu.flops_per_s(dtype)
    except PlannerError:
        return False
    return True
