"""Step-time model: how long one engine step takes on one replica (pure functions, no file I/O
beyond the shipped kernel tables).

One step of vLLM runs the model once over every scheduled token: one decode token per running
sequence plus chunks of prefill. Its time, per GPU of a tensor-parallel group, is the sum over the
model's kernels of vLLM's own measured latencies (planner/perf/kernels.py: aiconfigurator-core's
tables, interpolated on the measured grid) plus the engine's costs outside those kernels:

    layers x [ GEMMs (QKV, O, MLP or router + shared experts)      measured GEMM table, m = tokens
             + routed experts (fused MoE)                         measured MoE table (or GEMM-derived)
             + attention: decode (batch x mean context)            measured FlashAttention/FlashInfer
                        + prefill chunks (causal, FLOP-equivalent length)
             + 2 all-reduces of tokens x hidden (TP > 1)          measured custom all-reduce
             + elementwise traffic per token (norms, rotary, SiLU) bytes / achieved bandwidth
             + layer_fixed_s                                      fitted (the small kernels' floor) ]
    + lm_head GEMM (one row per sequence needing logits) + logits gather + step_overhead_s (fitted)

`gemm_scale`, `attention_scale` and `step_overhead_s` are the named terms a calibration may fit.
`create` compiles every lookup for one (model, GPU, TP, format): the GEMMs into one row of seconds
over the token count, decode attention into a (batch x context) grid, prefill attention and the
all-reduce into 1-D rows, so one `step_seconds` call is a few interpolations (microseconds).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import numpy as np

from planner.errors import PlannerError
from planner.inputs.calibration import PerfCalibration
from planner.perf import kernels as K
from planner.perf.breakdown import (StepBreakdown, reference_decode_run_seconds, reference_step_seconds,
                                    step_breakdown)
from planner.perf.compile import (  # noqa: F401  (re-exported: the model's stated constants)
    CUSTOM_ALLREDUCE_MAX_BYTES,
    NCCL_LATENCY_S,
    WEIGHT_ONLY_FLOP_FACTOR,
    WEIGHT_ONLY_FLOP_FACTOR_SOURCE,
    compile_constants,
)

PREFIX_CACHING_NOTE = ("prefix caching is not modelled: every prompt is prefilled in full (shared prefixes "
                       "would shorten TTFT and prefill work)")

_PY_SUM_MAX = 48
_add_reduce = np.add.reduce
_M_GRID = [float(m) for m in K.M_GRID]


# 0, 1, 2, ... shared by every decode run (sliced, never written)
_STEPS = np.arange(1 << 16, dtype=np.float64)
_STEPS.flags.writeable = False


def _lerp_list(xs: list[float], ys: list[float], x: float) -> float:
    """Linear interpolation on sorted xs; beyond the ends: proportional to x (size-scaled)."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1] * x / xs[-1]
    i = bisect_right(xs, x)
    x0, x1 = xs[i - 1], xs[i]
    y0 = ys[i - 1]
    return y0 + (ys[i] - y0) * (x - x0) / (x1 - x0)


class StepTimeModel:
    """Step times of one model on one GPU type at a tensor-parallel size and format.

    Build with `StepTimeModel.create(...)`. Context lengths are the tokens already in a sequence's
    KV cache; its decode step attends over them plus the new token.
    """

    spec_name: str
    gpu_id: str
    tensor_parallel_size: int
    weight_format: str
    weight_bytes_total: int
    weight_only: bool
    kv_cache_dtype: str
    notes: list[str]
    calibration: PerfCalibration
    estimated: bool
    kernel_source: str
    vllm_version: str
    n_layers: int
    n_full: int
    n_sliding: int
    window: int
    hidden: int
    act_bytes: float
    gemm_rows: list[float]  # seconds of all layers' GEMMs + experts at each M_GRID token count
    head_rows: list[float]  # lm_head seconds at each M_GRID row count
    vocab_per_gpu: int
    dec_batch: list[float]
    dec_ctx: list[float]
    dec_grid: np.ndarray  # (batch, ctx) seconds of one layer's decode attention
    pre_isl: list[float]
    pre_row: list[float]  # one layer's prefill attention at batch 1 by prompt length
    pre_floor: float
    ar_bytes: list[float]
    ar_row: list[float]
    ar_formula: tuple[float, float] | None  # (latency, bytes/s) when no table
    nccl_bw: float  # bytes/s of one link direction NCCL reaches (messages above the custom all-reduce's)
    act_s_per_token: float
    layer_fixed_s: float
    host_s: float
    gemm_scale: float
    attention_scale: float
    weight_bytes_step: float
    flops_per_token: float
    bw_achieved: float
    flop_rate_achieved: float
    kv_tok_layer: float
    attn_flops_per_token: float
    num_experts: int
    experts_per_tok: int
    expert_bytes_each: float
    dense_weight_bytes: float

    def __init__(self, **constants: Any) -> None:
        self.__dict__.update(constants)
        self._gemm_cache: dict[int, float] = {}
        self._const_cache: dict[tuple[int, int], float] = {}
        self._dec_rows: dict[int, list[float]] = {}
        self._chunk_cache: dict[tuple[int, int], float] = {}

    # ------------------------------------------------------------------ construction

    @classmethod
    def create(
        cls,
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
    ) -> "StepTimeModel":
        """Compile the kernel lookups of one (model, GPU, TP, format).

        Args:
            spec: a ModelSpec (HF field names).
            gpu: a GpuSpec; its kernel tables are gpu_catalog/kernels/<id>.npz when measured,
                else transferred from the measured GPUs (estimated).
            tensor_parallel_size: GPUs the model is split over.
            precision, quantization, kv_cache_dtype: the checkpoint's format (see planner size).
            host_overhead_s / step_overhead_s: per-step time outside the kernels (None: the GPU
                calibration's value; step_overhead_s wins when both are given).
            attention_split_kv: ignored (the measured kernels split long contexts); kept for callers.
            gemm_scale, attention_scale: multipliers on the measured GEMM/expert and attention
                times (None: the GPU calibration's, 1 = as measured); what `planner calibrate` fits.
            layer_fixed_s: per-layer small-kernel time (None: the GPU calibration's).
        Raises:
            PlannerError: a TP size the heads do not divide, an unknown format, no interconnect.
        """
        from planner.perf.corrections import with_gpu_calibration  # noqa: PLC0415  (it imports nothing of ours)

        model = cls(**compile_constants(
            spec, gpu, tensor_parallel_size, precision, quantization, kv_cache_dtype,
            host_overhead_s=host_overhead_s, attention_split_kv=attention_split_kv, gemm_scale=gemm_scale,
            attention_scale=attention_scale, step_overhead_s=step_overhead_s, layer_fixed_s=layer_fixed_s,
        ))
        # A GPU YAML written by `planner calibrate` carries corrections fitted to the user's runs.
        return with_gpu_calibration(model, gpu, spec.name, tensor_parallel_size, precision, quantization,
                                    kv_cache_dtype)

    # ------------------------------------------------------------------ pieces

    def _layers_gemm_s(self, tokens: int) -> float:
        t = self._gemm_cache.get(tokens)
        if t is None:
            t = _lerp_list(_M_GRID, self.gemm_rows, float(tokens)) if tokens > 0 else 0.0
            if len(self._gemm_cache) < 65536:
                self._gemm_cache[tokens] = t
        return t

    def _head_s(self, rows: int) -> float:
        return _lerp_list(_M_GRID, self.head_rows, float(rows)) if rows > 0 else 0.0

    def _ar_one(self, nbytes: float) -> float:
        n = self.tensor_parallel_size
        if self.ar_formula is not None:
            lat, bw = self.ar_formula
            return lat + 2.0 * (n - 1) / n * nbytes / bw
        if nbytes > CUSTOM_ALLREDUCE_MAX_BYTES:
            return NCCL_LATENCY_S + 2.0 * (n - 1) / n * nbytes / self.nccl_bw
        xs, ys = self.ar_bytes, self.ar_row
        if nbytes <= xs[0]:
            return ys[0]
        if nbytes >= xs[-1]:
            return ys[-1] * nbytes / xs[-1]
        i = bisect_right(xs, nbytes)
        lx0, lx1 = math.log(xs[i - 1]), math.log(xs[i])
        w = (math.log(nbytes) - lx0) / (lx1 - lx0)
        return math.exp(math.log(ys[i - 1]) * (1 - w) + math.log(ys[i]) * w)

    def _allreduce_s(self, tokens: int, logit_rows: int) -> float:
        if self.tensor_parallel_size == 1 or tokens <= 0:
            return 0.0
        per = self._ar_one(tokens * self.hidden * self.act_bytes)
        # the logits: vLLM gathers each rank's vocab slice (sized here as one all-reduce of the rows' logits)
        gather = self._ar_one(logit_rows * self.vocab_per_gpu * self.act_bytes) if logit_rows else 0.0
        return 2 * self.n_layers * per + gather

    def _batch_const_s(self, tokens: int, rows: int) -> float:
        """Everything in a step but attention: depends only on the token and logit-row counts."""
        key = (tokens, rows)
        t = self._const_cache.get(key)
        if t is None:
            t = (self._layers_gemm_s(tokens) + self._head_s(rows) + self._allreduce_s(tokens, rows)
                 + tokens * self.act_s_per_token + self.n_layers * self.layer_fixed_s + self.host_s)
            if len(self._const_cache) < 262144:
                self._const_cache[key] = t
        return t

    def _dec_row(self, b: int) -> list[float]:
        r = self._dec_rows.get(b)
        if r is None:
            bs = self.dec_batch
            g = self.dec_grid
            if b >= bs[-1]:
                r = [float(x) * b / bs[-1] for x in g[-1]]
            elif b <= bs[0]:
                r = [float(x) for x in g[0]]
            else:
                i = bisect_right(bs, float(b))
                w = (b - bs[i - 1]) / (bs[i] - bs[i - 1])
                r = [float(x) for x in g[i - 1] * (1 - w) + g[i] * w]
            self._dec_rows[b] = r
        return r

    def _decode_layer_s(self, b: int, mean_ctx: float) -> float:
        """One layer's decode attention for b sequences at a mean context (measured grid)."""
        return _lerp_list(self.dec_ctx, self._dec_row(b), mean_ctx)

    def _decode_attention_s(self, b: int, sum_ctx: float, sum_slide: float) -> float:
        if b <= 0:
            return 0.0
        t = 0.0
        if self.n_full:
            t += self.n_full * self._decode_layer_s(b, sum_ctx / b)
        if self.n_sliding:
            t += self.n_sliding * self._decode_layer_s(b, sum_slide / b)
        return t

    def _chunk_layer_s(self, chunk: int, done: int, cap: int) -> float:
        """One layer's attention for a prefill chunk, as a fresh prefill of the same FLOPs."""
        if cap:
            done = min(done, cap)
            c_eff = min(chunk, cap)
            length = math.sqrt(chunk * (2.0 * done + c_eff))
        else:
            length = math.sqrt(chunk * (2.0 * done + chunk))
        xs, ys = self.pre_isl, self.pre_row
        if length <= xs[0]:
            return ys[0]
        if length >= xs[-1]:
            return ys[-1] * (length / xs[-1]) ** 2
        i = bisect_right(xs, length)
        lx0, lx1 = math.log(xs[i - 1]), math.log(xs[i])
        w = (math.log(length) - lx0) / (lx1 - lx0)
        return math.exp(math.log(ys[i - 1]) * (1 - w) + math.log(ys[i]) * w)

    def _chunk_attention_s(self, chunk: int, done: int) -> tuple[float, float, float]:
        """All layers' attention for one prefill chunk beyond the kernel's launch floor:
        (seconds, FLOPs, K/V bytes)."""
        t = flops = kv = 0.0
        for n_layers, cap in ((self.n_full, 0), (self.n_sliding, self.window)):
            if not n_layers:
                continue
            t += n_layers * (self._chunk_layer_s(chunk, done, cap) - self.pre_floor)
            span = done + (chunk + 1) / 2.0
            kv_tokens = done + chunk
            if cap:
                span = min(span, cap)
                kv_tokens = min(kv_tokens, cap + chunk)
            flops += n_layers * self.attn_flops_per_token * chunk * span
            kv += n_layers * kv_tokens * self.kv_tok_layer
        return t, flops, kv

    # ------------------------------------------------------------------ public API

    @property
    def decode_depends_on_context_sum(self) -> bool:
        """No sliding-window layers: the simulator calls `step_seconds_summed` / `decode_run_pieces`."""
        return not self.n_sliding

    def step_seconds(self, decode_context_lens: np.ndarray,
                     prefill_chunks: Sequence[tuple[int, int]] = ()) -> float:
        """One engine step: a decode token for each running sequence plus prefill chunks.

        Args:
            decode_context_lens: tokens already cached for each decoding sequence (int array).
            prefill_chunks: (chunk_tokens, tokens_already_computed) per prefilling sequence.
        Returns:
            seconds.
        """
        ctx = decode_context_lens
        b = len(ctx)
        if b <= _PY_SUM_MAX:
            lst = ctx.tolist() if hasattr(ctx, "tolist") else list(ctx)
            total = sum(lst)
        else:
            total = _add_reduce(np.asarray(ctx))
        if not self.n_sliding or not b:
            return self.step_seconds_summed(b, total, prefill_chunks)
        # Sliding-window layers attend over min(context + 1, window) tokens of each sequence.
        attn = self._chunks_attention_s(prefill_chunks, False)
        w = self.window
        if b <= _PY_SUM_MAX:
            s_sl = float(sum([c + 1 if c < w else w for c in lst]))
        else:
            s_sl = float(_add_reduce(np.minimum(np.asarray(ctx) + 1, w)))
        attn += self._decode_attention_s(b, float(total) + b, s_sl)
        tokens = b + sum(c for c, _ in prefill_chunks)
        rows = b + len(prefill_chunks)
        const = self._const_cache.get((tokens, rows))
        if const is None:
            const = self._batch_const_s(tokens, rows)
        return const + attn

    def _chunks_attention_s(self, prefill_chunks: Sequence[tuple[int, int]], floor: bool) -> float:
        """Attention of the prefill chunks (in order), plus the kernel's launch floor when `floor`."""
        attn = 0.0
        cache = self._chunk_cache
        for key in prefill_chunks:
            a = cache.get(key)
            if a is None:
                a = self._chunk_attention_s(key[0], key[1])[0]
                if len(cache) < 65536:
                    cache[key] = a
            attn += a
        if floor:  # the attention kernel's launch floor, once per step
            attn += (self.n_full + self.n_sliding) * self.pre_floor
        return attn

    def step_seconds_summed(self, num_decodes: int, decode_context_sum: float,
                            prefill_chunks: Sequence[tuple[int, int]] = ()) -> float:
        """`step_seconds` from the decode contexts' count and (integer) sum alone: exact when
        `decode_depends_on_context_sum` (the same operations as on the array)."""
        b = num_decodes
        tokens = b
        attn = 0.0
        if prefill_chunks:
            for chunk, _ in prefill_chunks:
                tokens += chunk
            attn = self._chunks_attention_s(prefill_chunks, not b)
        if tokens == 0:
            return 0.0
        rows = b + len(prefill_chunks)
        if b:
            s = float(decode_context_sum) + b
            if self.n_sliding:
                raise PlannerError("step_seconds_summed needs a model without sliding-window layers")
            # _decode_attention_s inlined: one interpolation in the batch's compiled row
            row = self._dec_rows.get(b) or self._dec_row(b)
            xs = self.dec_ctx
            x = s / b
            if x <= xs[0]:
                a = row[0]
            elif x >= xs[-1]:
                a = row[-1] * x / xs[-1]
            else:
                i = bisect_right(xs, x)
                x0 = xs[i - 1]
                y0 = row[i - 1]
                a = y0 + (row[i] - y0) * (x - x0) / (xs[i] - x0)
            attn += self.n_full * a
        return (self._const_cache.get((tokens, rows)) or self._batch_const_s(tokens, rows)) + attn

    def _reference_step_seconds(self, decode_context_lens: np.ndarray,
                                prefill_chunks: Sequence[tuple[int, int]] = ()) -> float:
        """`step_seconds` in its plain form (planner.perf.breakdown)."""
        return reference_step_seconds(self, decode_context_lens, prefill_chunks)

    def decode_run_seconds(self, context_lens: np.ndarray, num_steps: int) -> np.ndarray:
        """Durations of the next `num_steps` pure-decode steps, every context growing by one per step.

        The batch is fixed, so the non-attention part is one constant and the attention one
        interpolation of the compiled (batch) row at the mean context of each step: a handful of
        array operations whatever the run's length.
        """
        if num_steps <= 0:
            return np.zeros(0)
        ctx = np.asarray(context_lens)
        b = ctx.size
        if b == 0:
            return np.zeros(num_steps)
        const = self._const_cache.get((b, b))
        if const is None:
            const = self._batch_const_s(b, b)
        steps = _STEPS[:num_steps] if num_steps <= _STEPS.size else np.arange(num_steps, dtype=np.float64)
        row = self._dec_row(b)
        xs = self.dec_ctx
        mean0 = (float(_add_reduce(ctx)) + b) / b
        if not self.n_sliding:
            # The run's mean context moves by one per step: inside one segment of the compiled row
            # (or past its end) the attention is a straight line in the step index.
            line = K.segment_line(xs, row, mean0, mean0 + (num_steps - 1))
            if line is not None:
                a0, slope = line
                out = steps * (self.n_full * slope)
                out += const + self.n_full * a0
                return out
        out = np.full(num_steps, const)
        if self.n_full:
            out += self.n_full * self._interp_vec(mean0 + steps, xs, row)
        if self.n_sliding:
            w = self.window
            srt = np.sort(ctx + 1)
            prefix = np.concatenate(([0.0], np.cumsum(srt, dtype=np.float64)))
            idx = np.searchsorted(srt, w - steps, side="left")
            s_slide = prefix[idx] + idx * steps + (b - idx) * w
            out += self.n_sliding * self._interp_vec(s_slide / b, xs, row)
        return out

    def decode_run_pieces(self, num_decodes: int, decode_context_sum: float,
                          num_steps: int) -> list[tuple[int, float, float]]:
        """The next `num_steps` pure-decode steps of `num_decodes` sequences whose contexts sum to
        `decode_context_sum`, as lines: [(k0, seconds of step k0, increase per step), ...], one per
        piece of the measured grid the run's mean context crosses (step k of the piece starting at
        k0 takes seconds + (k - k0) * increase). The same piecewise-linear times as
        `decode_run_seconds` (to float rounding) without an array; the simulator sums them in
        closed form. Needs `decode_depends_on_context_sum`."""
        b = num_decodes
        if self.n_sliding:
            raise PlannerError("decode_run_pieces needs a model without sliding-window layers")
        const = self._const_cache.get((b, b)) or self._batch_const_s(b, b)
        row = self._dec_rows.get(b) or self._dec_row(b)
        xs = self.dec_ctx
        n_full = self.n_full
        mean0 = (float(decode_context_sum) + b) / b
        # The run's mean context moves by one per step: inside one segment of the compiled row
        # (or past its end) the attention is a straight line in the step index.
        line = K.segment_line(xs, row, mean0, mean0 + (num_steps - 1))
        if line is not None:
            return [(0, const + n_full * line[0], n_full * line[1])]
        pieces = []
        k = 0
        while k < num_steps:
            x = mean0 + k
            if x >= xs[-1]:  # proportional past the grid
                slope = row[-1] / xs[-1]
                a0, end = slope * x, num_steps
            elif x < xs[0]:  # flat before it
                slope, a0, end = 0.0, row[0], math.ceil(xs[0] - mean0)
            else:
                i = bisect_right(xs, x)
                slope = (row[i] - row[i - 1]) / (xs[i] - xs[i - 1])
                a0, end = row[i - 1] + slope * (x - xs[i - 1]), math.ceil(xs[i] - mean0)
            pieces.append((k, const + n_full * a0, n_full * slope))
            k = min(max(int(end), k + 1), num_steps)
        return pieces

    @staticmethod
    def _interp_vec(x: np.ndarray, xs: list[float], ys: list[float]) -> np.ndarray:
        y = np.interp(x, xs, ys)
        over = x > xs[-1]
        if over.any():
            y[over] = ys[-1] * x[over] / xs[-1]
        return y

    def _reference_decode_run_seconds(self, context_lens: np.ndarray, num_steps: int) -> np.ndarray:
        """`decode_run_seconds` as one `_reference_step_seconds` per step."""
        return reference_decode_run_seconds(self, context_lens, num_steps)

    def prefill_seconds(self, prompt_tokens: int, batch: int = 1) -> float:
        """One forward pass over `batch` fresh prompts of `prompt_tokens` each (time to first token
        on an idle replica, the prompt in one chunk)."""
        if prompt_tokens <= 0 or batch <= 0:
            raise PlannerError("prefill needs prompt_tokens >= 1 and batch >= 1")
        return self.step_seconds(np.zeros(0, dtype=np.int64), [(prompt_tokens, 0)] * batch)

    def touched_experts(self, tokens: int) -> float:
        """Expected distinct routed experts a step's tokens touch in one layer: E(1 - (1 - k/E)^T)."""
        E, k = self.num_experts, self.experts_per_tok
        if not E or tokens <= 0:
            return 0.0
        return E * (1.0 - (1.0 - k / E) ** tokens)

    def breakdown(self, decode_context_lens: np.ndarray = np.zeros(0, dtype=np.int64),
                  prefill_chunks: Sequence[tuple[int, int]] = ()) -> StepBreakdown:
        """The step of `step_seconds` split into its terms (for `planner perf`)."""
        return step_breakdown(self, decode_context_lens, prefill_chunks)
