"""The transfer rule: kernel tables for a GPU without measurements, predicted from the measured
GPUs (estimated), and its leave-one-GPU-out check (docs/perf.md tabulates it)."""

from __future__ import annotations

from typing import Any

import numpy as np

from planner.perf.kernels import (
    GEMM_WEIGHT_BYTES,
    M_GRID,
    AttentionGrid,
    KernelTables,
    MeasuredTables,
    measured_gpu_ids,
    measured_tables,
)


def _rate(gpu: Any, dtype: str) -> float | None:
    try:
        return float(gpu.flops_per_s(dtype))
    except Exception:  # noqa: BLE001 - a PlannerError: the catalog lacks the rate
        return None


def _compute_dtype(gemm_dtype: str) -> str:
    return {"bf16": "bf16", "fp8": "fp8", "nvfp4": "fp8", "mxfp4": "bf16", "int4": "bf16"}.get(gemm_dtype, "bf16")


def gemm_roofline_s(gpu: Any, dtype: str, m: np.ndarray, n: int, k: int) -> np.ndarray | None:
    """Spec-sheet time of a GEMM: the larger of its FLOPs at the dense peak and its bytes at the
    peak bandwidth (None: the GPU has no rate for the format)."""
    rate = _rate(gpu, _compute_dtype(dtype))
    if rate is None:
        return None
    wb = GEMM_WEIGHT_BYTES.get(dtype, 2.0)
    flops = 2.0 * m * n * k
    bytes_ = n * k * wb + 2.0 * m * (n + k)
    return np.maximum(flops / rate, bytes_ / gpu.memory_bandwidth_bytes_per_s)


def attention_roofline_s(gpu: Any, kind: str, batch: np.ndarray, length: np.ndarray, heads: int,
                         kv_heads: int, head_dim: int, kv_bytes: float) -> np.ndarray:
    """Spec-sheet time of one layer's attention over a (batch x length) grid."""
    b = batch[:, None]
    s = length[None, :]
    rate = _rate(gpu, "bf16") or _rate(gpu, "fp16") or 1e14
    if kind == "decode":
        flops = 4.0 * b * s * heads * head_dim
        bytes_ = b * s * 2.0 * kv_heads * head_dim * kv_bytes
    else:
        flops = 2.0 * b * s * s * heads * head_dim
        bytes_ = b * s * (heads + 2 * kv_heads) * head_dim * 2.0 * 2.0
    return np.maximum(flops / rate, bytes_ / gpu.memory_bandwidth_bytes_per_s)


def _interp_grid(g: AttentionGrid, batch: np.ndarray, length: np.ndarray) -> np.ndarray:
    """`g` evaluated at another (batch x length) grid, log-bilinear, clamped to g's ends and scaled
    linearly in batch and length beyond them."""
    lb, ll = np.log(g.batch), np.log(g.length)
    lt = np.log(g.seconds)
    rows = np.array([np.interp(np.log(length), ll, r) for r in lt])  # (g.batch, length)
    out = np.array([np.interp(np.log(batch), lb, c) for c in rows.T]).T  # (batch, length)
    t = np.exp(out)
    t = t * np.maximum(1.0, batch / g.batch[-1])[:, None] * np.maximum(1.0, length / g.length[-1])[None, :]
    return t


def _link(gpu: Any) -> tuple[str, float | None]:
    ic = getattr(gpu, "interconnect", None)
    return (getattr(ic, "kind", "pcie"), getattr(ic, "bandwidth_bytes_per_s", None))


class TransferredTables(KernelTables):
    """A GPU without measurements, predicted from the measured ones (estimated).

    The rule: a kernel reaches the same fraction of its spec-sheet roofline on every GPU. For each
    kernel shape, each measured GPU S gives t_S x roofline_T / roofline_S, where roofline =
    max(FLOPs / dense peak of the format, bytes / peak memory bandwidth) from the catalog; the
    prediction is the geometric mean over the measured GPUs that ran that format. All-reduces keep
    the measured GPUs' fixed latency and scale the rest by the link bandwidth, learned from the
    measured GPUs with the same link kind (NVLink; PCIe: the L40S). `leave_one_out()` checks it.
    """

    def __init__(self, gpu: Any, sources: list[tuple[KernelTables, Any]]) -> None:
        self.gpu = gpu
        self.gpu_id = getattr(gpu, "id", "gpu")
        self.measured = False
        self.sources = sources
        names = ", ".join(t.gpu_id for t, _ in sources)
        versions = sorted({t.vllm_version for t, _ in sources})
        self.vllm_version = versions[-1] if versions else "?"
        self.source = (f"estimated: transferred from the vLLM kernel measurements of {names} by the "
                       f"spec-sheet roofline rule (docs/perf.md)")
        self._row_cache: dict[tuple[str, int, int], np.ndarray] = {}

    def has_gemm(self, dtype: str) -> bool:
        if _rate(self.gpu, _compute_dtype(dtype)) is None:
            return False
        if dtype == "nvfp4":  # FP4 tensor cores: Blackwell only, not in the catalog's rates
            return False
        return any(t.has_gemm(dtype) and _rate(g, _compute_dtype(dtype)) for t, g in self.sources)

    def gemm_row(self, dtype: str, n: int, k: int) -> np.ndarray:
        key = (dtype, n, k)
        row = self._row_cache.get(key)
        if row is not None:
            return row
        m = np.asarray(M_GRID, dtype=np.float64)
        target = gemm_roofline_s(self.gpu, dtype, m, n, k)
        logs = []
        for tables, spec in self.sources:
            if not tables.has_gemm(dtype):
                continue
            roof = gemm_roofline_s(spec, dtype, m, n, k)
            if roof is None or target is None:
                continue
            # the fixed floor (launch, synchronisation) stays; the rest scales with the roofline
            floor = tables.gemm_floor_s(dtype) if isinstance(tables, MeasuredTables) else 0.0
            t = tables.gemm_row(dtype, n, k)
            logs.append(np.log(floor + np.maximum(t - floor, 0.0) * target / roof))
        row = np.exp(np.mean(logs, axis=0))
        self._row_cache[key] = row
        return row

    def _attention(self, kind: str, kv_dtype: str, head_dim: int, heads: int, kv_heads: int) -> AttentionGrid:
        ref = None
        logs = []
        kvb = 1.0 if kv_dtype == "fp8" else 2.0
        for tables, spec in self.sources:
            g = (tables.decode_attention if kind == "decode" else tables.prefill_attention)(kv_dtype, head_dim, heads, kv_heads)
            if ref is None:
                ref = g
            t = _interp_grid(g, ref.batch, ref.length)
            floor = float(g.seconds.min())
            ratio = (attention_roofline_s(self.gpu, kind, ref.batch, ref.length, heads, kv_heads, head_dim, kvb)
                     / attention_roofline_s(spec, kind, ref.batch, ref.length, heads, kv_heads, head_dim, kvb))
            logs.append(np.log(floor + (t - floor) * ratio))
        assert ref is not None
        return AttentionGrid(ref.batch, ref.length, np.exp(np.mean(logs, axis=0)))

    def decode_attention(self, kv_dtype: str, head_dim: int, heads: int, kv_heads: int) -> AttentionGrid:
        return self._attention("decode", kv_dtype, head_dim, heads, kv_heads)

    def prefill_attention(self, kv_dtype: str, head_dim: int, heads: int, kv_heads: int) -> AttentionGrid:
        return self._attention("prefill", kv_dtype, head_dim, heads, kv_heads)

    def allreduce(self, n_gpus: int) -> tuple[np.ndarray, np.ndarray] | None:
        kind, link = _link(self.gpu)
        if link is None:
            return None
        logs, ref = [], None
        for tables, spec in self.sources:
            s_kind, s_link = _link(spec)
            if s_kind != kind or s_link is None:
                continue
            row = tables.allreduce(n_gpus)
            if row is None:
                continue
            sizes, t = row
            if ref is None:
                ref = sizes
            t = np.interp(np.log(ref), np.log(sizes), t)
            floor = t.min()
            logs.append(np.log(floor + (t - floor) * s_link / link))
        if ref is None:
            return None
        return ref, np.exp(np.mean(logs, axis=0))

    def moe(self, dtype: str, hidden: int, inter: int, experts: int, topk: int, tp: int) -> tuple[np.ndarray, np.ndarray] | None:
        rate_t = _rate(self.gpu, _compute_dtype(dtype))
        if rate_t is None or dtype == "nvfp4":
            return None
        logs, ref = [], None
        wb = {"bf16": 2.0, "fp8": 1.0, "mxfp4": 0.53, "int4": 0.52}.get(dtype, 2.0)
        for tables, spec in self.sources:
            row = tables.moe(dtype, hidden, inter, experts, topk, tp)
            rate_s = _rate(spec, _compute_dtype(dtype))
            if row is None or rate_s is None:
                continue
            tok, t = row
            if ref is None:
                ref = tok
            t = np.exp(np.interp(np.log(ref), np.log(tok), np.log(t)))
            touched = experts * (1.0 - (1.0 - topk / experts) ** ref)
            flops = 6.0 * hidden * inter / tp * ref * topk
            bytes_ = touched * 3.0 * hidden * inter / tp * wb

            def roof(g: Any, r: float) -> np.ndarray:
                return np.maximum(flops / r, bytes_ / g.memory_bandwidth_bytes_per_s)

            logs.append(np.log(t * roof(self.gpu, rate_t) / roof(spec, rate_s)))
        if ref is None:
            return None
        return ref, np.exp(np.mean(logs, axis=0))


def _catalog_gpu(gpu_id: str) -> Any:
    from planner.inputs.catalog import get_gpu  # noqa: PLC0415

    return get_gpu(gpu_id)


def transferred(gpu: Any, exclude: tuple[str, ...] = ()) -> TransferredTables | None:
    sources: list[tuple[KernelTables, Any]] = []
    for gid in measured_gpu_ids():
        if gid in exclude or gid == getattr(gpu, "id", None):
            continue
        t = measured_tables(gid)
        if t is not None:
            sources.append((t, _catalog_gpu(gid)))
    return TransferredTables(gpu, sources) if sources else None


# GEMM shapes the leave-one-out check compares: the grid's n, k from 512 to 16384
LOO_NK = (512, 1024, 2048, 4096, 8192, 16384)
LOO_M = (1, 8, 32, 128, 512, 2048, 8192)


def leave_one_out() -> list[dict[str, Any]]:
    """Predict each measured GPU's kernels from the others by the transfer rule: median and 90th
    percentile |error| per kernel kind (GEMMs by format; decode attention; all-reduce)."""
    out = []
    m_idx = [M_GRID.index(m) for m in LOO_M]
    for gid in measured_gpu_ids():
        real = measured_tables(gid)
        spec = _catalog_gpu(gid)
        pred = transferred(spec, exclude=(gid,))
        assert real is not None and pred is not None
        row: dict[str, Any] = {"gpu": gid}
        for dtype in ("bf16", "fp8"):
            if not real.has_gemm(dtype) or not pred.has_gemm(dtype):
                continue
            errs = []
            for n in LOO_NK:
                for k in LOO_NK:
                    r = real.gemm_row(dtype, n, k)[m_idx]
                    p = pred.gemm_row(dtype, n, k)[m_idx]
                    errs.extend(np.abs(p / r - 1.0))
            row[f"gemm_{dtype}"] = (float(np.median(errs)), float(np.percentile(errs, 90)), len(errs))
        errs = []
        for heads, kvh in ((64, 8), (32, 8), (8, 1), (16, 2)):
            rg = real.decode_attention("bf16", 128, heads, kvh)
            pg = pred.decode_attention("bf16", 128, heads, kvh)
            keep_b, keep_s = rg.batch <= 256, (rg.length >= 127) & (rg.length <= 16383)
            pb = _interp_grid(pg, rg.batch[keep_b], rg.length[keep_s])
            rb = rg.seconds[np.ix_(keep_b, keep_s)]
            errs.extend(np.abs(pb / rb - 1.0).ravel())
        row["decode_attention"] = (float(np.median(errs)), float(np.percentile(errs, 90)), len(errs))
        errs = []
        for n_gpus in (2, 4, 8):
            r2, p2 = real.allreduce(n_gpus), pred.allreduce(n_gpus)
            if r2 is None or p2 is None:
                continue
            sel = r2[0] <= 64 * 2**20
            p_at = np.interp(np.log(r2[0][sel]), np.log(p2[0]), p2[1])
            errs.extend(np.abs(p_at / r2[1][sel] - 1.0))
        if errs:
            row["allreduce"] = (float(np.median(errs)), float(np.percentile(errs, 90)), len(errs))
        out.append(row)
    return out


def tables_for(gpu: Any) -> KernelTables | None:
    """The measured tables of `gpu` (or of the catalog GPU a `planner calibrate` YAML was written
    from), else the transferred ones (None: no measured GPU at all)."""
    for gid in (getattr(gpu, "id", ""), getattr(getattr(gpu, "benchmark_calibration", None), "base_gpu", None)):
        measured = measured_tables(gid) if gid else None
        if measured is not None:
            return measured
    return transferred(gpu)

