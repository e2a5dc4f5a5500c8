"""`StepTimeModel`: the time of one engine step on one replica (the formula is in the package
docstring, `planner.perf`). `create` precomputes every constant (`planner.perf.constants`); the
per-step work is a few float operations plus a sum and a max over the running sequences' context
lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from planner.errors import PlannerError
from planner.perf.constants import (
    _PY_SUM_MAX,
    _STEP_INDEX,
    ONE_SHOT_LINK_FRACTION,
    RING_LATENCY_S,
    RING_LINK_FRACTION,
    SMALL_KERNELS_PER_LAYER,
    StepBreakdown,
    StepTimeConstants,
    _add_reduce,
    _Gemm,
    _max_reduce,
    _min_reduce,
    _step_index,
    step_time_constants,
)


class StepTimeModel(StepTimeConstants):
    """Step times of one model on one GPU type at a tensor-parallel size and precision.

    Build with `StepTimeModel.create(...)`; the constructor takes precomputed constants.
    Context lengths are the tokens already in a sequence's KV cache; its decode step attends over
    them plus the new token.
    """

    def __init__(self, **constants: Any) -> None:
        self.__dict__.update(constants)
        self._gemm_cache: dict[int, float] = {}
        self._const_cache: dict[tuple[int, int], float] = {}  # (tokens, logit rows) -> seconds
        # Products the hot paths reuse, grouped as the reference computation groups them (Python
        # evaluates a * b * c left to right), so the fast paths give the same floats.
        self._chunk_flop_coef = 2.0 * self.q_heads_per_gpu * self.attn_dims
        self._serial_s_per_token = self.kv_unit_tok_layer / self.unit_bw

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
    ) -> "StepTimeModel":
        """Precompute the constants of the step-time model (see `step_time_constants` for the args).

        Raises:
            PlannerError: a TP size the heads do not divide, an unknown format, a missing rate.
        """
        from planner.perf.corrections import with_gpu_calibration

        model = cls(**step_time_constants(
            spec, gpu, tensor_parallel_size, precision, quantization, kv_cache_dtype,
            host_overhead_s=host_overhead_s, attention_split_kv=attention_split_kv))
        # A GPU YAML written by `planner calibrate` carries corrections fitted to the user's runs.
        return with_gpu_calibration(model, gpu, spec.name, tensor_parallel_size, precision, quantization,
                                    kv_cache_dtype)

    def _gemm_time(self, g: _Gemm, rows: int) -> float:
        stream = self.kernel_s + g.weight_bytes / self.bw
        compute = 2.0 * rows * g.k * g.n / g.flop_rate
        return self._roof(stream, compute)

    def _roof(self, stream: float, compute: float) -> float:
        """Smooth roofline: (stream^n + compute^n)^(1/n); n >= 64 is max(stream, compute)."""
        n = self.roof_n
        if n >= 64.0:
            return stream if stream > compute else compute
        return (stream**n + compute**n) ** (1.0 / n)

    def _layers_gemm_s(self, tokens: int) -> float:
        """All layers' dense (always-run) GEMMs plus routed experts for `tokens` rows."""
        t = self._gemm_cache.get(tokens)
        if t is None:
            t = self.n_dense * sum(self._gemm_time(g, tokens) for g in self.dense_gemms)
            if self.n_moe:
                t += self.n_moe * (sum(self._gemm_time(g, tokens) for g in self.moe_gemms)
                                   + self._experts_s(tokens))
            if len(self._gemm_cache) < 65536:
                self._gemm_cache[tokens] = t
        return t

    def touched_experts(self, tokens: int) -> float:
        """Expected distinct routed experts a step's tokens touch in one layer: E(1 - (1 - k/E)^T)."""
        E, k = self.num_experts, self.experts_per_tok
        if not E or tokens <= 0:
            return 0.0
        return E * (1.0 - (1.0 - k / E) ** tokens)

    def _experts_s(self, tokens: int) -> float:
        """One MoE layer's routed experts: stream the touched ones (two fused kernels), or compute."""
        if tokens <= 0:
            return 0.0
        touched = self.touched_experts(tokens)
        stream = 2 * self.kernel_s + touched * self.expert_bytes_each / self.bw
        compute = tokens * self.experts_per_tok * self.expert_flops_per_row / self.expert_rate
        return self._roof(stream, compute)

    def _activation_s(self, tokens: int) -> float:
        width = self.n_dense * self.dense_width + self.n_moe * self.moe_width
        return tokens * width * self.act_s_per_token_width

    def _head_s(self, rows: int) -> float:
        return self._gemm_time(self.head, rows) if rows > 0 else 0.0

    def _collective_s(self, bus_bytes: float) -> float:
        """One collective moving `bus_bytes` per GPU: one-shot (small) or ring (large), the faster."""
        one_shot = self.ar_lat + bus_bytes / (ONE_SHOT_LINK_FRACTION * self.ar_bw)
        ring = RING_LATENCY_S + bus_bytes / (RING_LINK_FRACTION * self.ar_bw)
        return one_shot if one_shot < ring else ring

    def _allreduce_s(self, tokens: int, logit_rows: int) -> float:
        """Two all-reduces of the activations per layer, plus gathering the logits."""
        if self.tensor_parallel_size == 1:
            return 0.0
        n = self.tensor_parallel_size
        msg = tokens * self.hidden * self.act_bytes
        per_ar = self._collective_s(2.0 * (n - 1) / n * msg)
        gather = self._collective_s((n - 1) / n * logit_rows * self.head.n * n * self.act_bytes)
        return 2 * self.n_layers * per_ar + gather

    def _decode_attention_s(self, sum_full: float, max_full: float, sum_slide: float, max_slide: float) -> float:
        """All layers' decode attention given the summed and longest attended tokens."""
        t = 0.0
        for n_layers, s, m in ((self.n_full, sum_full, max_full), (self.n_sliding, sum_slide, max_slide)):
            if n_layers and s > 0:
                stream = s * self.decode_attn_s_per_token
                if not self.split_kv:
                    serial = m * self.kv_unit_tok_layer / self.unit_bw
                    stream = stream if stream > serial else serial
                t += n_layers * stream
        return t

    def _chunk_attention_s(self, chunk: int, done: int) -> tuple[float, float, float]:
        """All layers' attention for one prefill chunk: (seconds, FLOPs, K/V bytes)."""
        t = flops = kv = 0.0
        for n_layers, cap in ((self.n_full, 0), (self.n_sliding, self.window)):
            if not n_layers:
                continue
            span = done + (chunk + 1) / 2.0  # causal: the average query sees half its chunk
            kv_tokens = done + chunk
            if cap:
                span = min(span, cap)
                kv_tokens = min(kv_tokens, cap + chunk)
            f = 2.0 * self.q_heads_per_gpu * self.attn_dims * chunk * span
            b = kv_tokens * self.kv_tok_layer
            t += n_layers * max(f / self.attn_rate, b / self.bw)
            flops += n_layers * f
            kv += n_layers * b
        return t, flops, kv

    def _fixed_s(self) -> float:
        """The layers' small kernels: a Llama layer's, the shape's extra ones (norms, MoE routing) and
        the activation-quantization kernels of fp8/int8 GEMMs, each at layer_fixed_s / 33."""
        extra = self.quant_kernels + self.extra_small_kernels
        return self.layer_fixed_s * (self.n_layers + extra / SMALL_KERNELS_PER_LAYER)

    # ------------------------------------------------------------------ public API

    def _decode_sums(self, ctx: np.ndarray) -> tuple[float, float, float, float]:
        if ctx.size == 0:
            return 0.0, 0.0, 0.0, 0.0
        s = float(ctx.sum()) + ctx.size  # each sequence also attends to its new token
        m = float(ctx.max()) + 1.0
        if not self.n_sliding:
            return s, m, 0.0, 0.0
        w = self.window
        return s, m, float(np.minimum(ctx + 1, w).sum()), min(m, w)

    def step_seconds(self, decode_context_lens: np.ndarray,
                     prefill_chunks: Sequence[tuple[int, int]] = ()) -> float:
        """One engine step: a decode token for each running sequence plus prefill chunks.

        The simulator calls this once per engine step: the same floats as
        `_reference_step_seconds` (the plain form of the physics), with the context sums taken in
        Python for small batches (numpy's per-call overhead dominates a 2-10 element sum) and the
        chunk and decode attention inlined.

        Args:
            decode_context_lens: tokens already cached for each decoding sequence (int array).
            prefill_chunks: (chunk_tokens, tokens_already_computed) per prefilling sequence.
        Returns:
            seconds.
        """
        ctx = np.asarray(decode_context_lens)
        b = ctx.size
        tokens = b
        attn = 0.0
        if prefill_chunks:
            n_full, n_sliding, cap = self.n_full, self.n_sliding, self.window
            coef, attn_rate, bw, kv_tok = self._chunk_flop_coef, self.attn_rate, self.bw, self.kv_tok_layer
            for chunk, done in prefill_chunks:  # _chunk_attention_s, seconds only
                tokens += chunk
                t = 0.0
                span = done + (chunk + 1) / 2.0  # causal: the average query sees half its chunk
                if n_full:
                    f_s = coef * chunk * span / attn_rate
                    b_s = (done + chunk) * kv_tok / bw
                    t += n_full * max(f_s, b_s)
                if n_sliding:
                    if cap:
                        f_s = coef * chunk * min(span, cap) / attn_rate
                        b_s = min(done + chunk, cap + chunk) * kv_tok / bw
                    else:
                        f_s = coef * chunk * span / attn_rate
                        b_s = (done + chunk) * kv_tok / bw
                    t += n_sliding * max(f_s, b_s)
                attn += t
        if tokens == 0:
            return 0.0
        rows = b + len(prefill_chunks)
        if b:
            if b <= _PY_SUM_MAX:
                lst = ctx.tolist()
                s = float(sum(lst)) + b  # each sequence also attends to its new token
                m = float(max(lst)) + 1.0
            else:
                s = float(_add_reduce(ctx)) + b
                m = float(_max_reduce(ctx)) + 1.0
            if self.n_sliding:
                w = self.window
                if b <= _PY_SUM_MAX:
                    s_sl = float(sum([c + 1 if c < w else w for c in lst]))
                else:
                    s_sl = float(_add_reduce(np.minimum(ctx + 1, w)))
                attn += self._decode_attention_s(s, m, s_sl, min(m, w))
            elif self.n_full:  # _decode_attention_s for full-attention layers only
                stream = s * self.decode_attn_s_per_token
                if not self.split_kv:
                    serial = m * self.kv_unit_tok_layer / self.unit_bw
                    stream = stream if stream > serial else serial
                attn += self.n_full * stream
        const = self._const_cache.get((tokens, rows))
        if const is None:
            const = self._batch_const_s(tokens, rows)
        return const + attn

    def _reference_step_seconds(self, decode_context_lens: np.ndarray,
                                prefill_chunks: Sequence[tuple[int, int]] = ()) -> float:
        """`step_seconds` in its plain form (numpy sums, one helper per term): what the fast path
        must equal (tests/test_perf.py checks them against each other on random steps)."""
        ctx = np.asarray(decode_context_lens)
        b = int(ctx.size)
        tokens = b
        attn = 0.0
        for chunk, done in prefill_chunks:
            tokens += chunk
            attn += self._chunk_attention_s(chunk, done)[0]
        if tokens == 0:
            return 0.0
        rows = b + len(prefill_chunks)
        if b:
            attn += self._decode_attention_s(*self._decode_sums(ctx))
        return self._batch_const_s(tokens, rows) + attn

    def _batch_const_s(self, tokens: int, rows: int) -> float:
        """Everything in a step but attention: it depends only on the token and logit-row counts."""
        key = (tokens, rows)
        t = self._const_cache.get(key)
        if t is None:
            t = (self._layers_gemm_s(tokens) + self._activation_s(tokens) + self._fixed_s()
                 + self._head_s(rows) + self._allreduce_s(tokens, rows) + self.host_s)
            if len(self._const_cache) < 262144:
                self._const_cache[key] = t
        return t

    def decode_run_seconds(self, context_lens: np.ndarray, num_steps: int) -> np.ndarray:
        """Durations of the next `num_steps` pure-decode steps, every context growing by one per step.

        A step's attention is the larger of two lines in the step index k (all K/V bytes:
        sum(context + 1) + batch x k tokens; the longest sequence alone: max(context + 1) + k), so
        the run is one or two arithmetic sequences: two array operations instead of a dozen, equal
        to `_reference_decode_run_seconds` within float rounding. Sliding-window layers keep that
        form unless a sequence crosses the window during the run (then the reference computes it).

        Args:
            context_lens: tokens already cached for each running sequence at the first step.
            num_steps: how many steps.
        Returns:
            float64 array of `num_steps` durations (seconds).
        """
        if num_steps <= 0:
            return np.zeros(0)
        ctx = np.asarray(context_lens)
        b = ctx.size
        if b == 0:
            return np.zeros(num_steps)
        if b <= _PY_SUM_MAX:
            lst = ctx.tolist()
            s0 = float(sum(lst)) + b  # each sequence also attends to its new token
            m0 = float(max(lst)) + 1.0
        else:
            s0 = float(_add_reduce(ctx)) + b
            m0 = float(_max_reduce(ctx)) + 1.0
        const = self._const_cache.get((b, b))
        if const is None:
            const = self._batch_const_s(b, b)
        n_layers = self.n_full
        if self.n_sliding:
            # Sliding-window layers attend like full ones while every sequence stays within the
            # window for the whole run, and to a constant b x window tokens once every sequence
            # has reached it; a run that crosses the window takes the general form.
            w = self.window
            if m0 + (num_steps - 1) <= w:
                n_layers += self.n_sliding
            elif (min(lst) if b <= _PY_SUM_MAX else float(_min_reduce(ctx))) + 1 >= w:
                slide = b * w * self.decode_attn_s_per_token
                if not self.split_kv:
                    serial = w * self._serial_s_per_token
                    slide = slide if slide > serial else serial
                const += self.n_sliding * slide
            else:
                return self._decode_run_general(ctx, num_steps, const, s0, m0)
        if not n_layers:
            return np.full(num_steps, const)
        steps = _STEP_INDEX[:num_steps] if num_steps <= _STEP_INDEX.size else _step_index(num_steps)
        # line 1, every sequence's K/V at the streaming bandwidth: const + L a (s0 + b k)
        per_tok = n_layers * self.decode_attn_s_per_token
        start1, slope1 = const + per_tok * s0, per_tok * b
        if self.split_kv:
            out = steps * slope1
            out += start1
            return out
        # line 2, the longest sequence scanned by one unit: const + L u (m0 + k). The larger of two
        # lines is the same one throughout when it is the larger at both ends.
        slope2 = n_layers * self._serial_s_per_token
        start2 = const + slope2 * m0
        last = num_steps - 1
        end1, end2 = start1 + slope1 * last, start2 + slope2 * last
        if start1 >= start2 and end1 >= end2:
            out = steps * slope1
            out += start1
        elif start2 >= start1 and end2 >= end1:
            out = steps * slope2
            out += start2
        else:  # they cross during the run
            out = steps * slope1
            out += start1
            line2 = steps * slope2
            line2 += start2
            np.maximum(out, line2, out=out)
        return out

    def _reference_decode_run_seconds(self, context_lens: np.ndarray, num_steps: int) -> np.ndarray:
        """`decode_run_seconds` in its plain vectorized form: what the fast path must equal within
        float rounding (tests/test_perf.py). Its general part also serves the fast path's runs in
        which a sequence crosses the sliding window."""
        ctx = np.asarray(context_lens)
        b = int(ctx.size)
        if num_steps <= 0:
            return np.zeros(0)
        if b == 0:
            return np.zeros(num_steps)
        s0 = float(ctx.sum()) + b
        m0 = float(ctx.max()) + 1.0
        return self._decode_run_general(ctx, num_steps, self._batch_const_s(b, b), s0, m0)

    def _decode_run_general(self, ctx: np.ndarray, num_steps: int, const: float, s0: float,
                            m0: float) -> np.ndarray:
        """Any run, one array operation per term: const = the step's non-attention seconds,
        s0 = sum(context + 1), m0 = max(context + 1) at the first step."""
        b = int(ctx.size)
        steps = np.arange(num_steps, dtype=np.float64)
        attn = self._attn_vec(self.n_full, s0 + b * steps, m0 + steps)
        if self.n_sliding:
            w = self.window
            srt = np.sort(ctx + 1)
            prefix = np.concatenate(([0.0], np.cumsum(srt, dtype=np.float64)))
            idx = np.searchsorted(srt, w - steps, side="left")  # sequences still under the window
            s_slide = prefix[idx] + idx * steps + (b - idx) * w
            attn = attn + self._attn_vec(self.n_sliding, s_slide, np.minimum(m0 + steps, w))
        return const + attn

    def _attn_vec(self, n_layers: int, sums: np.ndarray, maxes: np.ndarray) -> np.ndarray:
        if not n_layers:
            return np.zeros_like(sums)
        stream = sums * self.decode_attn_s_per_token
        if not self.split_kv:
            stream = np.maximum(stream, maxes * (self.kv_unit_tok_layer / self.unit_bw))
        return n_layers * stream

    def prefill_seconds(self, prompt_tokens: int, batch: int = 1) -> float:
        """One forward pass over `batch` fresh prompts of `prompt_tokens` each (time to first token
        without queueing).

        A standalone prefill runs eagerly in the calibration (no CUDA graph): it cannot be faster
        than the host can launch its kernels (eager_launch_s_per_layer x layers), which sets the
        time of short prompts.
        """
        if prompt_tokens <= 0 or batch <= 0:
            raise PlannerError("prefill needs prompt_tokens >= 1 and batch >= 1")
        tokens = prompt_tokens * batch
        attn = batch * self._chunk_attention_s(prompt_tokens, 0)[0]
        gpu = (self._layers_gemm_s(tokens) + attn + self._activation_s(tokens) + self._fixed_s()
               + self._head_s(batch) + self._allreduce_s(tokens, batch))
        return max(gpu, self.eager_s) + self.host_s

    def breakdown(self, decode_context_lens: np.ndarray = np.zeros(0, dtype=np.int64),
                  prefill_chunks: Sequence[tuple[int, int]] = ()) -> StepBreakdown:
        """The step of `step_seconds` split into its terms (for `planner perf`)."""
        ctx = np.asarray(decode_context_lens)
        b = int(ctx.size)
        tokens = b + sum(c for c, _ in prefill_chunks)
        rows = b + len(prefill_chunks)
        stream = compute = 0.0
        wbytes = flops = 0.0
        n_kernels = 0
        for n_layers, gemms in ((self.n_dense, self.dense_gemms), (self.n_moe, self.moe_gemms)):
            for g in gemms:
                stream += n_layers * (self.kernel_s + g.weight_bytes / self.bw)
                compute += n_layers * 2.0 * tokens * g.k * g.n / g.flop_rate
                wbytes += n_layers * g.weight_bytes
                flops += n_layers * 2.0 * tokens * g.k * g.n
                n_kernels += n_layers
        if self.n_moe and tokens:
            touched = self.touched_experts(tokens)
            stream += self.n_moe * (2 * self.kernel_s + touched * self.expert_bytes_each / self.bw)
            compute += self.n_moe * tokens * self.experts_per_tok * self.expert_flops_per_row / self.expert_rate
            wbytes += self.n_moe * touched * self.expert_bytes_each
            flops += self.n_moe * tokens * self.experts_per_tok * self.expert_flops_per_row
            n_kernels += 2 * self.n_moe
        if rows:
            stream += self.kernel_s + self.head.weight_bytes / self.bw
            compute += 2.0 * rows * self.head.k * self.head.n / self.head.flop_rate
            wbytes += self.head.weight_bytes
            flops += 2.0 * rows * self.head.k * self.head.n
            n_kernels += 1
        gemm_s = (self._layers_gemm_s(tokens) + self._head_s(rows)) if tokens else 0.0
        s_full, m_full, s_sl, m_sl = self._decode_sums(ctx)
        attn = self._decode_attention_s(s_full, m_full, s_sl, m_sl)
        kv = (self.n_full * s_full + self.n_sliding * s_sl) * self.kv_tok_layer
        flops += self.decode_flops_per_token * (self.n_full * s_full + self.n_sliding * s_sl)
        for chunk, done in prefill_chunks:
            t, f, k = self._chunk_attention_s(chunk, done)
            attn += t
            flops += f
            kv += k
        total = self.step_seconds(ctx, prefill_chunks)
        return StepBreakdown(
            total_s=total,
            decode_sequences=b,
            prefill_tokens=tokens - b,
            tokens=tokens,
            weight_bytes=wbytes,
            kv_bytes=kv,
            flops=flops,
            gemm_s=gemm_s,
            gemm_stream_s=stream,
            gemm_compute_s=compute,
            attention_s=attn,
            activation_s=self._activation_s(tokens),
            layer_fixed_s=self._fixed_s() if tokens else 0.0,
            kernel_fixed_s=n_kernels * self.kernel_s,
            allreduce_s=self._allreduce_s(tokens, rows) if tokens else 0.0,
            host_overhead_s=self.host_s if tokens else 0.0,
            fixed_s=(self._fixed_s() + n_kernels * self.kernel_s + self.host_s) if tokens else 0.0,
            bound="compute" if compute > stream else "memory",
        )


