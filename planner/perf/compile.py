"""Compile one (model, GPU, TP, format) into the constants `StepTimeModel` evaluates per step.

The model's kernels (per layer: QKV, O, MLP or router + shared experts + routed experts; attention;
two all-reduces under TP; the LM head) are looked up in the GPU's kernel tables
(planner/perf/kernels.py) once: the GEMMs summed into one row of seconds over the token count, the
decode attention into a (batch x context) grid, prefill attention and the all-reduce into 1-D rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from planner.errors import PlannerError
from planner.inputs.calibration import H100_FIT_SOURCE, PerfCalibration
from planner.inputs.models import param_counts
from planner.inputs.precision import DTYPE_BYTES, QUANT_FORMATS, activation_dtype, activation_precision
from planner.memory import check_tensor_parallel, kv_bytes_per_token_per_layer, kv_heads_per_gpu, weight_bytes_breakdown
from planner.perf import kernels as K
from planner.perf import transfer as T

# NOTE: elementwise traffic per token per layer, in activation elements, of vLLM's fused kernels:
# fused_add_rms_norm twice (read x and residual, write both: 4 x hidden each), rotary embedding in
# place on q and k (read + write), silu_and_mul (read 2 x inter, write inter). Estimated count.
NORM_PASSES = 8
ROTARY_PASSES = 2
ACT_PASSES = 3

# NOTE: weight-only formats (AWQ/GPTQ int4 Marlin, fp8 weights on a GPU without fp8 GEMMs) stream
# their smaller weights and dequantize into a 16-bit GEMM: the bf16 GEMM's time with its m = 1
# (streaming) part scaled by the weight bytes ratio and the rest at 80% of the 16-bit speed
# (Frantar et al., MARLIN, arXiv:2408.11743). Estimated.
WEIGHT_ONLY_FLOP_FACTOR = 0.8
WEIGHT_ONLY_FLOP_FACTOR_SOURCE = "estimated: dequantizing GEMMs reach ~80% of the 16-bit rate (MARLIN, arXiv:2408.11743)"

# NOTE: when a (GPU, TP) has no measured all-reduce (PCIe cards without a transfer source, TP
# sizes the tables lack): a one-shot latency plus bus bytes 2(N-1)/N x S over 80% of one link
# direction (NCCL ring; estimated).
ALLREDUCE_LATENCY_S: dict[str, float] = {"nvlink": 9e-6, "pcie": 25e-6, "xgmi": 12e-6}
RING_LINK_FRACTION = 0.8
# NOTE: vLLM's custom all-reduce serves messages up to 8 MiB (CustomAllreduce max_size,
# vllm/distributed/device_communicators/custom_all_reduce.py); larger ones go to NCCL, modelled as a
# ring: 25 us + bus bytes 2(N-1)/N x S at 80% of one link direction (estimated).
CUSTOM_ALLREDUCE_MAX_BYTES = 8 * 2**20
# NOTE: layer_fixed_s stands for vLLM's small per-layer kernels (norms, rotary + cache write,
# activation, quantization), whose time is launch and latency bound. Fitted on H100, it is carried
# to another measured GPU in proportion to that GPU's kernel floor: the smallest time in its bf16
# GEMM table, against the H100's. GPUs without tables keep the H100 value (already estimated).
FIT_GPU = "h100-sxm"
NCCL_LATENCY_S = 25e-6


def compile_constants(
    spec: Any,
    gpu: Any,
    tensor_parallel_size: int = 1,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
    *,
    host_overhead_s: float | None = None,
    attention_split_kv: bool | None = None,
    gemm_scale: float | None = None,
    attention_scale: float | None = None,
    step_overhead_s: float | None = None,
    layer_fixed_s: float | None = None,
) -> dict[str, Any]:
    """The constants of `StepTimeModel` for one (model, GPU, TP, format): every kernel lookup
    compiled into rows and grids. Arguments and errors: `StepTimeModel.create`."""
    tp = int(tensor_parallel_size)
    check_tensor_parallel(spec, tp)
    cal: PerfCalibration = getattr(gpu, "calibration", None) or PerfCalibration()
    gemm_scale = cal.value("gemm_scale") if gemm_scale is None else float(gemm_scale)
    attention_scale = cal.value("attention_scale") if attention_scale is None else float(attention_scale)
    for name, v in (("gemm_scale", gemm_scale), ("attention_scale", attention_scale)):
        if not v > 0:
            raise PlannerError(f"{name} must be > 0, got {v}")
    wb = weight_bytes_breakdown(spec, precision, quantization)
    counts = param_counts(spec)
    quantization = wb.quantization
    weight_dtype = wb.precision
    tables = T.tables_for(gpu)
    gid = getattr(gpu, "id", "gpu")
    if tables is None:
        raise PlannerError("no kernel tables found (gpu_catalog/kernels/): reinstall planner")
    if not tables.has_gemm("bf16"):
        # the transfer rule scales measured kernels by the spec sheet's dense tensor rate
        raise PlannerError(
            f"GPU {gid!r} has no bf16 tensor-core rate in the catalog (bf16_flops_per_s), so its step "
            f"times cannot be estimated: add the figure to its YAML, or leave the GPU out of candidates.gpus"
        )
    notes: list[str] = []
    estimated = not tables.measured
    if estimated:
        notes.append(f"{gid}: kernel times {tables.source}")

    L = spec.num_hidden_layers
    H = spec.hidden_size
    qh = spec.num_attention_heads // tp
    kvh = kv_heads_per_gpu(spec, tp)
    act_precision = activation_precision(precision, quantization)
    act_dtype = activation_dtype(act_precision)
    act_bytes = DTYPE_BYTES[act_dtype]
    fmt = QUANT_FORMATS.get(quantization)

    # ---- which measured GEMM each weight runs as
    def table_dtype(dtype: str) -> tuple[str, float | None]:
        """(table, weight-only bytes ratio or None)."""
        if dtype in ("bf16", "fp16", "fp32"):
            return "bf16", None
        if dtype in ("fp8", "int8") and tables.has_gemm("fp8"):
            if dtype == "int8":
                notes.append("int8 (w8a8) GEMMs timed as fp8 GEMMs of the same shape (estimated)")
            return "fp8", None
        if dtype == "nvfp4" and tables.has_gemm("nvfp4"):
            return "nvfp4", None
        ratio = DTYPE_BYTES.get(dtype, 2.0) / 2.0
        notes.append(f"{dtype} GEMMs on {gid}: weight-only rule on the bf16 GEMMs "
                     f"({WEIGHT_ONLY_FLOP_FACTOR_SOURCE})")
        return "bf16", ratio

    if fmt is None:
        lin_dtype = weight_dtype
        expert_dtype = weight_dtype
    else:
        lin_dtype = act_dtype if fmt.experts_only else fmt.weight_dtype
        expert_dtype = fmt.weight_dtype
    lin_table, lin_wo = table_dtype(lin_dtype)
    weight_only = lin_wo is not None

    m_grid = np.asarray(K.M_GRID, dtype=np.float64)

    def row(n: int, k: int, table: str = "bf16", wo: float | None = None) -> np.ndarray:
        r = tables.gemm_row(table, max(1, n), max(1, k))
        if wo is not None:
            t1 = r[0]
            r = wo * t1 + (r - t1) / WEIGHT_ONLY_FLOP_FACTOR
        return r * gemm_scale

    # ---- the layers' GEMMs (per GPU shapes)
    uses_mla = spec.uses_mla
    shapes: list[tuple[int, int]] = []
    if uses_mla:
        dqk = spec.qk_nope_head_dim + spec.qk_rope_head_dim
        dv = spec.v_head_dim
        if spec.q_lora_rank:
            shapes += [(spec.q_lora_rank, H), (qh * dqk, spec.q_lora_rank)]
        else:
            shapes += [(qh * dqk, H)]
        shapes += [(spec.kv_lora_rank + spec.qk_rope_head_dim, H),
                   (qh * (spec.qk_nope_head_dim + dv), spec.kv_lora_rank), (H, qh * dv)]
        qkv_width = qh * dqk + spec.kv_lora_rank + spec.qk_rope_head_dim
        head_dim = spec.kv_lora_rank + spec.qk_rope_head_dim
        att_kv_heads = 1
        notes.append("MLA attention timed as one-KV-head attention of the latent width (estimated)")
    else:
        d = spec.head_dim
        shapes += [((qh + 2 * kvh) * d, H), (H, qh * d)]
        qkv_width = (qh + 2 * kvh) * d
        head_dim = d
        att_kv_heads = kvh
    attn_rows = sum((row(n, k, lin_table, lin_wo) for n, k in shapes), np.zeros(len(m_grid)))

    def mlp_rows(inter: int) -> np.ndarray:
        i = max(1, inter // tp)
        return row(2 * i, H, lin_table, lin_wo) + row(H, i, lin_table, lin_wo)

    n_moe = spec.num_moe_layers
    n_dense = L - n_moe
    dense_rows = attn_rows + (mlp_rows(spec.intermediate_size) if spec.intermediate_size else 0.0)
    total = n_dense * dense_rows
    E, k_top = spec.num_experts, spec.num_experts_per_tok
    expert_bytes_each = 0.0
    if n_moe:
        shared_inter = spec.shared_expert_intermediate_size or spec.num_shared_experts * spec.moe_intermediate_size
        moe_layer = attn_rows + row(max(E, 1), H)  # router, 16-bit, replicated
        if shared_inter:
            moe_layer = moe_layer + mlp_rows(shared_inter)
        expert_bytes_each = wb.expert_per_layer / tp
        measured = tables.moe(expert_dtype if expert_dtype != "fp16" else "bf16", H,
                              spec.moe_intermediate_size, E, k_top, tp)
        if measured is None and expert_dtype in ("bf16", "fp16"):
            measured = None
        if measured is not None:
            tok, t = measured
            experts = np.exp(np.interp(np.log(m_grid), np.log(tok), np.log(t)))
            big = m_grid > tok[-1]
            experts[big] = t[-1] * m_grid[big] / tok[-1]
            experts = experts * gemm_scale
        else:
            # the touched experts as one grouped GEMM: tokens x top-k rows against the touched
            # experts' weights (estimated from the dense GEMM table)
            mi = max(1, spec.moe_intermediate_size // tp)
            e_table, e_wo = table_dtype(expert_dtype)
            touched = E * (1.0 - (1.0 - k_top / E) ** m_grid)
            rows_k = np.maximum(1.0, m_grid * k_top)
            per = row(2 * mi, H, e_table, e_wo) + row(H, mi, e_table, e_wo)
            per_at = np.interp(rows_k, m_grid, per) * np.maximum(1.0, rows_k / m_grid[-1])
            one = per[0]
            experts = per_at + (touched - 1.0).clip(min=0) * one
            notes.append(f"{spec.name}: routed experts of this shape not in {gid}'s MoE table: "
                         "timed as grouped GEMMs from the dense GEMM table (estimated)")
        total = total + n_moe * (moe_layer + experts)
    head_bytes = (wb.lm_head or wb.embedding) / tp
    vocab_tp = max(1, spec.vocab_size // tp)
    head_rows = row(vocab_tp, H)

    # ---- attention
    kv_choice = "fp8" if kv_cache_dtype == "fp8" else "bf16"
    dec = tables.decode_attention(kv_choice, head_dim, qh, att_kv_heads)
    pre = tables.prefill_attention(kv_choice, head_dim, qh, att_kv_heads)
    pre_row = pre.seconds[0] * attention_scale  # batch 1
    n_sliding = spec.num_sliding_layers
    window = spec.sliding_window or 0

    # ---- all-reduce
    ar_bytes: list[float] = []
    ar_row: list[float] = []
    ar_formula = None
    if tp > 1:
        ic = getattr(gpu, "interconnect", None)
        link = getattr(ic, "bandwidth_bytes_per_s", None)
        if link is None:
            raise PlannerError(
                f"GPU {gid!r} has no interconnect bandwidth in the catalog: "
                f"add interconnect.bandwidth_bytes_per_s to its YAML or use tensor_parallel_size 1"
            )
        ar = tables.allreduce(tp)
        if ar is None:
            lat = getattr(ic, "latency_s", None) or ALLREDUCE_LATENCY_S.get(getattr(ic, "kind", "pcie"), 25e-6)
            ar_formula = (lat, RING_LINK_FRACTION * link / 2)
            notes.append(f"all-reduce over {tp} x {gid}: not measured; {lat * 1e6:.0f} us + bus bytes at "
                         f"{RING_LINK_FRACTION:.0%} of one link direction (estimated)")
        else:
            ar_bytes, ar_row = [float(x) for x in ar[0]], [float(x) for x in ar[1]]
            if not tables.measured:
                notes.append(f"all-reduce over {tp} x {gid}: {tables.source}")

    # ---- achieved rates (for the elementwise term and the breakdown's bound)
    big = tables.gemm_row("bf16", 8192, 8192)
    bw_ach = 8192 * 8192 * 2.0 / big[0]
    big_lin = tables.gemm_row(lin_table, 8192, 8192)
    flop_ach = 2.0 * 8192 ** 3 / float(np.interp(8192.0, m_grid, big_lin))
    inter_tp = (spec.intermediate_size or (k_top * spec.moe_intermediate_size)) // tp
    width = NORM_PASSES * H + ROTARY_PASSES * qkv_width + ACT_PASSES * inter_tp
    act_s_per_token = L * width * act_bytes / bw_ach

    lf = cal.value("layer_fixed_s") if layer_fixed_s is None else float(layer_fixed_s)
    if layer_fixed_s is None and cal.layer_fixed_s.source == H100_FIT_SOURCE:
        ratio = small_kernel_ratio(tables)
        if ratio != 1.0:
            lf *= ratio
            notes.append(f"layer_fixed_s {lf * 1e6:.1f} us: the H100 fit x {ratio:.2f}, this GPU's kernel floor "
                         f"(smallest measured bf16 GEMM time) against the H100's")
    host = host_overhead_s if step_overhead_s is None else step_overhead_s
    host = cal.value("step_overhead_s") if host is None else float(host)
    if host < 0:
        raise PlannerError(f"host_overhead_s must be >= 0, got {host}")
    if lf < 0:
        raise PlannerError(f"layer_fixed_s must be >= 0, got {lf}")
    kv_tok_layer = kv_bytes_per_token_per_layer(spec, kv_cache_dtype, tp, act_precision)
    dense_w = (wb.attention_per_layer + wb.dense_mlp_per_layer) / tp
    return dict(
        spec_name=spec.name,
        gpu_id=gid,
        tensor_parallel_size=tp,
        weight_format=quantization if fmt is not None else weight_dtype,
        weight_bytes_total=wb.total,
        weight_only=weight_only,
        kv_cache_dtype=kv_cache_dtype,
        notes=list(dict.fromkeys(notes)),
        calibration=cal,
        estimated=estimated,
        kernel_source=tables.source,
        vllm_version=tables.vllm_version,
        n_layers=L,
        n_full=L - n_sliding,
        n_sliding=n_sliding,
        window=window,
        hidden=H,
        act_bytes=act_bytes,
        gemm_rows=[float(x) for x in total],
        head_rows=[float(x) for x in head_rows],
        vocab_per_gpu=vocab_tp,
        dec_batch=[float(x) for x in dec.batch],
        dec_ctx=[float(x) for x in dec.length],
        dec_grid=dec.seconds * attention_scale,
        pre_isl=[float(x) for x in pre.length],
        pre_row=[float(x) for x in pre_row],
        pre_floor=float(pre_row[0]),
        ar_bytes=ar_bytes,
        ar_row=ar_row,
        ar_formula=ar_formula,
        nccl_bw=RING_LINK_FRACTION * (getattr(getattr(gpu, "interconnect", None), "bandwidth_bytes_per_s", None) or 1e11) / 2,
        act_s_per_token=act_s_per_token,
        layer_fixed_s=lf,
        host_s=host,
        gemm_scale=gemm_scale,
        attention_scale=attention_scale,
        weight_bytes_step=L * dense_w + head_bytes,
        flops_per_token=2.0 * (counts.active - counts.embedding) / tp,
        bw_achieved=bw_ach,
        flop_rate_achieved=flop_ach,
        kv_tok_layer=kv_tok_layer,
        attn_flops_per_token=2.0 * qh * (2 * head_dim),
        num_experts=E,
        experts_per_tok=k_top,
        expert_bytes_each=expert_bytes_each,
        dense_weight_bytes=dense_w,
    )


def small_kernel_ratio(tables: Any) -> float:
    """A measured GPU's kernel floor over the H100's (1 for the H100 and for GPUs without tables)."""
    ref = K.measured_tables(FIT_GPU)
    if ref is None or not isinstance(tables, K.MeasuredTables) or tables.gpu_id == FIT_GPU or not tables.has_gemm("bf16"):
        return 1.0
    return float(tables.gemm_floor_s("bf16") / ref.gemm_floor_s("bf16"))
