"""Cross-check: the kernel-table step model against the eager-PyTorch H200 harness measurements.

Usage:
    python bench/calibration.py [--data-dir bench/data] [--markdown]

bench/data/h200-llama-3.1-8b.json holds decode steps and prefills of a Llama-3.1-8B shape (bf16)
timed by a plain-PyTorch harness on one H200 (unfused norms and rotary, an SDPA decode attention
that does not split long contexts, eager prefill). It was the step model's calibration source until
the model moved to vLLM's own measured kernels (docs/perf.md); it is now a cross-check only: vLLM's
fused, CUDA-graphed kernels should be as fast or faster than that harness at every point, and
most so where the harness's unfused kernels or its attention dominated (small batches, long contexts).
Nothing is fitted here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.inputs.catalog import get_gpu  # noqa: E402
from planner.inputs.models import get_model  # noqa: E402
from planner.perf import StepTimeModel  # noqa: E402


def cross_check(data: dict) -> list[dict]:
    """Every decode step and prefill of the harness file with the model's prediction (seconds)."""
    model = StepTimeModel.create(get_model("llama-3.1-8b"), get_gpu("h200"), 1, "bf16")
    m = data["llama-3.1-8b"]
    rows = []
    for p in m["decode"]:
        pred = model.step_seconds(np.full(p["batch"], p["context"], dtype=np.int64))
        rows.append({"kind": "decode", "point": f"batch {p['batch']} context {p['context']}",
                     "harness_s": p["seconds"], "model_s": pred})
    for p in m["prefill"]:
        pred = model.prefill_seconds(p["prompt"], p["batch"])
        rows.append({"kind": "prefill", "point": f"batch {p['batch']} prompt {p['prompt']}",
                     "harness_s": p["seconds"], "model_s": pred})
    for r in rows:
        r["ratio"] = r["model_s"] / r["harness_s"]
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "data")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    data = json.loads((args.data_dir / "h200-llama-3.1-8b.json").read_text())
    rows = cross_check(data)
    if args.markdown:
        print("| kind | point | eager harness ms | vLLM kernel model ms | model / harness |")
        print("|---|---|---:|---:|---:|")
    for r in rows:
        if args.markdown:
            print(f"| {r['kind']} | {r['point']} | {r['harness_s'] * 1e3:.3f} | {r['model_s'] * 1e3:.3f} | {r['ratio']:.2f} |")
        else:
            print(f"{r['kind']:<8}{r['point']:<28}{r['harness_s'] * 1e3:>10.3f} ms{r['model_s'] * 1e3:>10.3f} ms"
                  f"{r['ratio']:>7.2f}")
    for kind in ("decode", "prefill"):
        ratios = [r["ratio"] for r in rows if r["kind"] == kind]
        print(f"{kind}: model / harness median {statistics.median(ratios):.2f}, range {min(ratios):.2f}-{max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
