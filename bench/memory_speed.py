"""Speed of the memory maths the optimizer calls per candidate, and the engine view against the vLLM
startup logs it is checked on.

Usage:
    python bench/memory_speed.py

Prints microseconds per call of engine_view / min_tensor_parallel_size / size_report and
`planner perf`'s memory check (perf_report.perf_memory), the cost of an engine view for every preset and
TP (on the H100, then on every catalog GPU), then
planner's weights / activations / KV cache beside vLLM v0.11.0's logged figures on one H100
(llm-d/llm-d-benchmark config_explorer/empirical-vllm-memory-results.md @259334868c50).
"""

from __future__ import annotations

import time

from planner.catalog import GIB, get_gpu, load_catalog
from planner.memory import default_engine_args, engine_view, min_tensor_parallel_size, size_report
from planner.models import get_model, list_presets
from planner.perf_report import perf_memory

# (model, tp, gpu_memory_utilization, vLLM's weights GiB, activation GiB, KV cache GiB)
VLLM_LOGS = [
    ("llama-3.1-8b", 1, 0.9, 14.99, 4.76, 51.38),
    ("qwen3-32b", 1, 0.9, 61.03, 5.64, 4.45),
    ("qwen3-32b", 2, 0.9, 30.59, 5.64, 34.49),
    ("gpt-oss-20b", 1, 0.9, 13.47, 7.38, 50.28),
    ("gpt-oss-120b", 1, 0.95, 64.38, 7.38, 3.33),
]


def _time(fn, n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def _time_views(cases) -> tuple[float, int]:
    """Seconds and count of engine views over (model, gpu, engine args) x TP 1, 2, 4, 8."""
    start = time.perf_counter()
    calls = 0
    for m, g, a in cases:
        for tp in (1, 2, 4, 8):
            try:
                engine_view(m, g, a, tp)
                calls += 1
            except Exception:  # noqa: BLE001 (a TP that does not split the heads)
                pass
    return time.perf_counter() - start, calls


def main() -> None:
    h100 = get_gpu("h100-sxm")
    spec = get_model("llama-3.1-70b")
    args = default_engine_args(h100, 4096)
    gpus = list(load_catalog().values())
    print("speed (microseconds per call)")
    print(f"  engine_view(llama-3.1-70b, h100-sxm, TP 2)      {_time(lambda: engine_view(spec, h100, args, 2), 2000):8.1f}")
    print(f"  min_tensor_parallel_size(llama-3.1-70b, h100)   {_time(lambda: min_tensor_parallel_size(spec, h100, args, 'fp16'), 500):8.1f}")
    print(f"  size_report(llama-3.1-70b, {len(gpus)} GPUs)             {_time(lambda: size_report(spec, gpus), 100):8.1f}")
    h200, l8b = get_gpu("h200"), get_model("llama-3.1-8b")
    fit = lambda: perf_memory(l8b, h200, batch=64, context=2048, prompt_tokens=4096, prefill_chunk=512)  # noqa: E731
    print(f"  perf_memory(8B, h200, decode+prompt+chunk)      {_time(fit, 500):8.1f}  (`planner perf`'s memory check)")
    models = [get_model(m) for m in list_presets()]
    # every preset on one GPU at TP 1/2/4/8: what the optimizer pays per GPU type (formerly an
    # assertion-free "test" in tests/test_memory.py; timings belong here)
    elapsed, calls = _time_views((m, h100, args) for m in models)
    print(f"  every preset x TP on h100-sxm ({calls} views)      {elapsed * 1e3:8.1f} ms total, "
          f"{elapsed / calls * 1e6:.1f} us per view (first call per model included)")
    elapsed, calls = _time_views((m, g, default_engine_args(g, 4096)) for m in models for g in gpus)
    print(f"  every preset x GPU x TP ({calls} views)          {elapsed * 1e3:8.1f} ms total, "
          f"{elapsed / calls * 1e6:.1f} us per view")

    print("\nengine view vs vLLM v0.11.0 logs on H100 80GB, max_model_len 16000 (GiB; vLLM / planner)")
    print(f"  {'model':<14}{'TP':>3}{'util':>6}{'weights':>17}{'activations':>17}{'KV cache':>17}")
    for name, tp, util, w, act, kv in VLLM_LOGS:
        v = engine_view(get_model(name), h100, default_engine_args(h100, 16000, gpu_memory_utilization=util), tp)
        print(f"  {name:<14}{tp:>3}{util:>6}"
              f"{w:>9.2f} / {v.weights_bytes_per_gpu / GIB:5.2f}"
              f"{act:>9.2f} / {v.activation_peak_bytes / GIB:5.2f}"
              f"{kv:>9.2f} / {v.kv_cache_bytes_per_gpu / GIB:5.2f}")


if __name__ == "__main__":
    main()
