"""vLLM's measured kernel latencies (gpu_catalog/kernels/*.npz) and the transfer rule for GPUs
without measurements. Pure lookups: no model shapes here, only "how long does this kernel take".

Every table answers one question for one GPU, interpolated on the measured grid:

- `gemm_row(dtype, n, k)`: seconds of an m x k by k x n GEMM at every m of `M_GRID`
  (log-bilinear in n and k: exact for a time proportional to n x k; beyond the grid scaled by
  n and k, i.e. by FLOPs and bytes);
- `decode_attention(kv_dtype, head_dim, heads, kv_heads)`: a (batch x context) table of one
  layer's decode attention (FlashAttention 3 on Hopper, FlashInfer/TRT-LLM on Blackwell, FA2 on
  Ada/Ampere: whatever vLLM runs by default there);
- `prefill_attention(...)`: one fresh causal prefill of `isl` tokens (batch 1) by `isl`;
- `allreduce(n_gpus)`: vLLM's custom all-reduce in a CUDA graph by message bytes;
- `moe(...)`: one fused-MoE layer by tokens for a measured (hidden, inter, experts, top-k) shape.

`MeasuredTables` reads one GPU's file; `TransferredTables` predicts a GPU without one from the
measured GPUs (the rule in its docstring), and `leave_one_out()` checks that rule.
"""

from __future__ import annotations

import json
from bisect import bisect_right
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

# m values the compiled GEMM rows are evaluated at: the measured grid without its "+1" probes
# (m = 17, 33, ..., 4353 measure the tile-boundary worst case; vLLM pads decode batches to its
# CUDA-graph sizes, multiples of 8, so the aligned points are what a step sees).
M_GRID: tuple[int, ...] = (
    1, 2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512, 768, 1024, 1280, 1536,
    1792, 2048, 2304, 2560, 2816, 3072, 3328, 3584, 3840, 4096, 4352, 8192, 16384, 32768,
)

KV_CODES = {"bf16": 0, "fp16": 0, "fp8": 1}
MOE_DTYPE_CODES = {"bf16": 0, "fp8": 1, "mxfp4": 2, "nvfp4": 3, "int4": 4}

# bytes per weight of each GEMM format the tables measure (activations are 16-bit)
GEMM_WEIGHT_BYTES = {"bf16": 2.0, "fp8": 1.0, "nvfp4": 0.5625}


class GpuLike(Protocol):
    id: str
    memory_bandwidth_bytes_per_s: float

    def flops_per_s(self, dtype: str) -> float: ...


def tables_dir() -> Path:
    from planner.resources import data_dir  # noqa: PLC0415

    return Path(data_dir("gpu_catalog")) / "kernels"


@lru_cache(maxsize=1)
def manifest() -> dict[str, Any]:
    path = tables_dir() / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {"gpus": {}}


def measured_gpu_ids() -> tuple[str, ...]:
    return tuple(sorted(manifest()["gpus"]))


def _fill_along(arr: np.ndarray, axis: int) -> np.ndarray:
    """Fill NaNs along `axis` linearly from measured neighbours (ends: the last two, linearly)."""
    a = np.moveaxis(arr.astype(np.float64), axis, -1).copy()
    flat = a.reshape(-1, a.shape[-1])
    x = np.arange(a.shape[-1], dtype=np.float64)
    for row in flat:
        ok = ~np.isnan(row)
        if ok.all() or ok.sum() == 0:
            continue
        if ok.sum() == 1:
            row[~ok] = row[ok][0]
            continue
        row[~ok] = np.interp(x[~ok], x[ok], row[ok])
    return np.moveaxis(a, -1, axis)


def _loglog(x: float, xs: np.ndarray, ys: np.ndarray, power: float = 1.0) -> float:
    """Interpolate y(x) in log-log space; beyond the grid scale as x**power from the end point."""
    if x <= xs[0]:
        return float(ys[0])
    if x >= xs[-1]:
        return float(ys[-1] * (x / xs[-1]) ** power)
    return float(np.exp(np.interp(math.log(x), np.log(xs), np.log(ys))))


def _bracket(grid: np.ndarray, x: float) -> tuple[int, int, float]:
    """Indices and log-space weight of `x` between two grid points (clamped to the grid)."""
    if x <= grid[0]:
        return 0, 0, 0.0
    if x >= grid[-1]:
        return len(grid) - 1, len(grid) - 1, 0.0
    hi = int(np.searchsorted(grid, x))
    lo = hi - 1
    w = (math.log(x) - math.log(grid[lo])) / (math.log(grid[hi]) - math.log(grid[lo]))
    return lo, hi, w


@dataclass(frozen=True)
class AttentionGrid:
    """One layer's attention seconds on a (batch x length) grid, NaN-free."""

    batch: np.ndarray  # float64
    length: np.ndarray  # float64
    seconds: np.ndarray  # (len(batch), len(length))


class KernelTables:
    """What the step-time model asks of one GPU's kernels; see the module docstring."""

    gpu_id: str
    measured: bool
    source: str
    vllm_version: str

    def gemm_row(self, dtype: str, n: int, k: int) -> np.ndarray:
        raise NotImplementedError

    def has_gemm(self, dtype: str) -> bool:
        raise NotImplementedError

    def decode_attention(self, kv_dtype: str, head_dim: int, heads: int, kv_heads: int) -> AttentionGrid:
        raise NotImplementedError

    def prefill_attention(self, kv_dtype: str, head_dim: int, heads: int, kv_heads: int) -> AttentionGrid:
        raise NotImplementedError

    def allreduce(self, n_gpus: int) -> tuple[np.ndarray, np.ndarray] | None:
        raise NotImplementedError

    def moe(self, dtype: str, hidden: int, inter: int, experts: int, topk: int, tp: int) -> tuple[np.ndarray, np.ndarray] | None:
        raise NotImplementedError


class MeasuredTables(KernelTables):
    """One GPU's extracted tables (planner.perf.refresh_tables wrote them)."""

    def __init__(self, gpu_id: str, path: Path, meta: dict[str, Any]) -> None:
        self.gpu_id = gpu_id
        self.measured = True
        tables = meta.get("tables", {})
        versions = sorted({t.get("vllm_version", "?") for t in tables.values()})
        self.vllm_version = tables.get("gemm", {}).get("vllm_version", versions[-1] if versions else "?")
        self.source = (f"vLLM {self.vllm_version} kernel measurements on {meta.get('system', gpu_id)} "
                       f"(aiconfigurator-core 0.12.0, Apache-2.0; gpu_catalog/kernels/)")
        with np.load(path) as z:
            self._z = {k: z[k] for k in z.files}
        self._gemm: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for dtype in GEMM_WEIGHT_BYTES:
            if f"gemm_{dtype}" not in self._z:
                continue
            arr = self._z[f"gemm_{dtype}"]
            m = self._z[f"gemm_{dtype}_m"].astype(np.float64)
            arr = _fill_along(_fill_along(arr, 0), 1)
            keep = np.isin(m, M_GRID)
            self._gemm[dtype] = (m[keep], self._z[f"gemm_{dtype}_n"].astype(np.float64),
                                 self._z[f"gemm_{dtype}_k"].astype(np.float64), np.log(arr[keep]))
        self._row_cache: dict[tuple[str, int, int], np.ndarray] = {}

    def has_gemm(self, dtype: str) -> bool:
        return dtype in self._gemm

    def gemm_floor_s(self, dtype: str) -> float:
        """The smallest measured GEMM time: the launch-and-latency floor no shape goes below."""
        return float(np.exp(self._gemm[dtype][3].min()))

    def gemm_row(self, dtype: str, n: int, k: int) -> np.ndarray:
        key = (dtype, n, k)
        row = self._row_cache.get(key)
        if row is not None:
            return row
        m, ns, ks, logt = self._gemm[dtype]
        ni0, ni1, wn = _bracket(ns, n)
        ki0, ki1, wk = _bracket(ks, k)
        lt = ((1 - wn) * (1 - wk) * logt[:, ni0, ki0] + wn * (1 - wk) * logt[:, ni1, ki0]
              + (1 - wn) * wk * logt[:, ni0, ki1] + wn * wk * logt[:, ni1, ki1])
        t = np.exp(lt)
        # beyond the grid: time grows with the GEMM's size (FLOPs and weight bytes both scale with n, k)
        t = t * max(1.0, n / ns[-1]) * max(1.0, k / ks[-1])
        # evaluate at M_GRID (the measured m where present; linear in m above the last)
        out = np.interp(np.asarray(M_GRID, dtype=np.float64), m, t)
        big = np.asarray(M_GRID, dtype=np.float64) > m[-1]
        out[big] = t[-1] * np.asarray(M_GRID, dtype=np.float64)[big] / m[-1]
        # a GEMM of fewer rows can always run padded as the larger one: time is non-decreasing in m
        # (removes single noisy points such as a slow m = 1 kernel choice)
        out = np.minimum.accumulate(out[::-1])[::-1]
        self._row_cache[key] = out
        return out

    def _attention(self, prefix: str, length_key: str, kv_dtype: str, head_dim: int, heads: int,
                   kv_heads: int) -> AttentionGrid:
        z = self._z
        arr = z[prefix]
        kv_i = int(np.searchsorted(z[f"{prefix}_kv"], KV_CODES.get(kv_dtype, 0)))
        kv_i = min(kv_i, len(z[f"{prefix}_kv"]) - 1)
        hd_vals = z[f"{prefix}_head_dim"]
        hd_i = int(np.argmin(np.abs(np.log(hd_vals / head_dim))))
        sub = arr[kv_i, hd_i]  # (heads, kv_heads, batch, length)
        if np.isnan(sub).all() and arr.shape[0] > 1:  # the other KV dtype was measured
            sub = arr[1 - kv_i, hd_i]
        hs, kvs = z[f"{prefix}_heads"], z[f"{prefix}_kv_heads"]
        # measured (heads, kv_heads) configurations with data
        have = [(h, kv) for i, h in enumerate(hs) for j, kv in enumerate(kvs)
                if not np.isnan(sub[i, j]).all()]
        group = heads / max(kv_heads, 1)
        same = [(h, kv) for h, kv in have if abs(h / kv - group) < 1e-9]
        cands = same or have
        # nearest configuration by query heads (log distance); time scales with heads x head_dim
        h0, kv0 = min(cands, key=lambda c: (abs(math.log(c[0] / heads)), abs(math.log(c[1] / max(kv_heads, 1)))))
        grid = sub[list(hs).index(h0), list(kvs).index(kv0)]
        grid = _fill_along(_fill_along(grid, 1), 0)
        # fewer sequences or shorter contexts never take longer (a smaller problem could run as the
        # larger one): the envelope from above removes single noisy points, as for the GEMMs
        grid = np.minimum.accumulate(grid[::-1], axis=0)[::-1]
        grid = np.minimum.accumulate(grid[:, ::-1], axis=1)[:, ::-1]
        scale = (heads / h0) * (head_dim / hd_vals[hd_i])
        if scale != 1.0:
            # the part above the smallest measured step (the launch floor) scales with the work
            floor = np.nanmin(grid)
            grid = floor + (grid - floor) * scale
        return AttentionGrid(z[f"{prefix}_batch"].astype(np.float64), z[f"{prefix}_{length_key}"].astype(np.float64),
                             np.maximum(grid, 1e-7))

    def decode_attention(self, kv_dtype: str, head_dim: int, heads: int, kv_heads: int) -> AttentionGrid:
        return self._attention("decode_attn", "ctx", kv_dtype, head_dim, heads, kv_heads)

    def prefill_attention(self, kv_dtype: str, head_dim: int, heads: int, kv_heads: int) -> AttentionGrid:
        return self._attention("prefill_attn", "isl", kv_dtype, head_dim, heads, kv_heads)

    def allreduce(self, n_gpus: int) -> tuple[np.ndarray, np.ndarray] | None:
        if "allreduce" not in self._z:
            return None
        gpus = list(self._z["allreduce_gpus"])
        if n_gpus not in gpus:
            return None
        row = self._z["allreduce"][gpus.index(n_gpus)]
        ok = ~np.isnan(row)
        t = row[ok].astype(np.float64)
        # a smaller message never takes longer than a larger one (drops single noisy points)
        t = np.minimum.accumulate(t[::-1])[::-1]
        return self._z["allreduce_bytes"][ok].astype(np.float64), t

    def moe(self, dtype: str, hidden: int, inter: int, experts: int, topk: int, tp: int) -> tuple[np.ndarray, np.ndarray] | None:
        if "moe_rows" not in self._z or dtype not in MOE_DTYPE_CODES:
            return None
        rows, lat = self._z["moe_rows"], self._z["moe_latency"]
        want = np.array([MOE_DTYPE_CODES[dtype], hidden, inter, experts, topk, tp])
        sel = (rows[:, :6] == want).all(axis=1)
        if sel.sum() < 2:
            return None
        tok = rows[sel, 6].astype(np.float64)
        order = np.argsort(tok)
        return tok[order], lat[sel][order].astype(np.float64)


@lru_cache(maxsize=None)
def measured_tables(gpu_id: str) -> MeasuredTables | None:
    meta = manifest()["gpus"].get(gpu_id)
    path = tables_dir() / f"{gpu_id}.npz"
    if meta is None or not path.exists():
        return None
    return MeasuredTables(gpu_id, path, meta)


def segment_line(xs: list[float], ys: list[float], x0: float, x1: float) -> tuple[float, float] | None:
    """(value at x0, slope) when [x0, x1] lies in one linear piece of the interpolation of ys over
    xs (flat before xs[0], proportional past xs[-1]); None when it crosses a grid point."""
    if x0 >= xs[-1]:
        return ys[-1] * x0 / xs[-1], ys[-1] / xs[-1]
    if x1 <= xs[0]:
        return ys[0], 0.0
    if x0 < xs[0]:
        return None
    i = bisect_right(xs, x0)
    if x1 > xs[i]:
        return None
    slope = (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
    return ys[i - 1] + slope * (x0 - xs[i - 1]), slope
