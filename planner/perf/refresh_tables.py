"""Extract the kernel tables the step-time model reads from an installed aiconfigurator-core.

    pip install '.[kernels]'            # aiconfigurator-core==0.12.0, pandas, pyarrow
    python -m planner.perf.refresh_tables

NVIDIA's aiconfigurator-core (Apache-2.0) ships, per GPU, the measured latency of vLLM's own
kernels (CUDA-graph timings of the GEMMs, FlashAttention/FlashInfer attention, the custom
all-reduce and the fused MoE). This script keeps only the grids the step-time model interpolates
(16-bit and fp8 GEMMs on the m x n x k grid, nvfp4 where measured; decode and prefill attention
for head_dim 64/128; the graph-mode all-reduce; MoE layers of every measured shape at one routing
distribution) and writes one compressed .npz per catalog GPU plus a manifest with the provenance
(package, vLLM version per table, GPU, licence, date). Latencies are stored in seconds.

The output lives in gpu_catalog/kernels/ and ships in the wheel; this module is the only code that
imports pandas (an optional extra), and the model itself never needs it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

PACKAGE = "aiconfigurator-core"
PACKAGE_VERSION = "0.12.0"

# catalog id -> aiconfigurator-core's system folder. Only GPUs with vLLM kernel tables.
MEASURED_GPUS: dict[str, str] = {
    "h100-sxm": "h100_sxm",
    "h200": "h200_sxm",
    "b200": "b200_sxm",
    "l40s": "l40s",
    "a100-80gb-sxm": "a100_sxm",
}

# the table's dtype names -> ours
GEMM_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "nvfp4": "nvfp4"}
# Several measured kernels per format: fp8 per-tensor and 128x128-block (DeepSeek/Qwen3 FP8
# checkpoints), MXFP4 weights with 16-bit or MXFP8 activations (FlashInfer TRT-LLM on Blackwell).
# Each point keeps the fastest, the backend vLLM selects for the GPU when it can.
MOE_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "fp8_block": "fp8", "w4a16_mxfp4": "mxfp4",
              "w4a8_mxfp4_mxfp8": "mxfp4", "nvfp4": "nvfp4", "int4_wo": "int4"}
MOE_CODES = ("bf16", "fp8", "mxfp4", "nvfp4", "int4")
ATTN_HEAD_DIMS = (64, 128)
ATTN_WINDOWS = (0,)
KV_DTYPES = {"bfloat16": 0, "fp8": 1}
# NOTE: the MoE workload aiconfigurator's own MoE models query (sdk/models/moe.py sets the power
# law's alpha to 1.2): tokens routed by a power law, closer to a real router's imbalance than a
# perfectly balanced split.
MOE_DISTRIBUTION = "power_law_1.2"

LICENCE_NOTICE = (
    "Kernel latencies extracted from aiconfigurator-core 0.12.0 (NVIDIA CORPORATION & AFFILIATES, "
    "https://github.com/ai-dynamo/aiconfigurator), licensed under the Apache License 2.0 "
    "(SPDX-License-Identifier: Apache-2.0). Only selected grid points are kept, converted to seconds."
)


def _package_root() -> Path:
    try:
        import aiconfigurator_core  # noqa: PLC0415
    except ImportError as err:  # pragma: no cover - needs the optional extra
        raise SystemExit("refresh_tables needs the kernels extra: pip install '.[kernels]'") from err
    root = Path(aiconfigurator_core.__file__).parent / "systems"
    from importlib.metadata import version  # noqa: PLC0415

    found = version(PACKAGE)
    if found != PACKAGE_VERSION:
        print(f"warning: {PACKAGE} {found} installed, the tables were defined for {PACKAGE_VERSION}", file=sys.stderr)
    return root


def _latest(folder: Path, table: str) -> tuple[Path, str] | None:
    """The newest vLLM version folder holding `table` (0.24.0 where present)."""
    versions = sorted(
        (p for p in folder.glob(f"*/{table}")),
        key=lambda p: tuple(int(x) if x.isdigit() else 0 for x in p.parent.name.split(".")),
    )
    if not versions:
        return None
    return versions[-1], versions[-1].parent.name


def _dominant(df: Any) -> Any:
    """Keep the rows of the kernel vLLM runs by default: the most measured source, Triton last."""
    counts = df["kernel_source"].value_counts()
    ranked = [k for k in counts.index if "triton" not in k] or list(counts.index)
    return df[df["kernel_source"] == ranked[0]], ranked[0]


def _grid(df: Any, axes: list[str], value: str = "latency") -> tuple[list[np.ndarray], np.ndarray]:
    """Dense array over the sorted unique values of `axes` (NaN where not measured), ms -> s."""
    values = [np.array(sorted(df[a].unique())) for a in axes]
    arr = np.full([len(v) for v in values], np.nan, dtype=np.float32)
    idx = tuple(np.searchsorted(v, df[a].to_numpy()) for v, a in zip(values, axes))
    arr[idx] = df[value].to_numpy() * 1e-3  # the tables are in milliseconds
    return values, arr


def _attention_rows(df: Any) -> Any:
    if "window_size" not in df:  # older tables (vLLM 0.14) measured full attention only
        df = df.assign(window_size=0)
    return df[df["head_dim"].isin(ATTN_HEAD_DIMS) & df["window_size"].isin(ATTN_WINDOWS)]


def extract_gpu(system_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import pandas as pd  # noqa: PLC0415

    out: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"tables": {}}

    found = _latest(system_dir / "gemm" / "vllm", "gemm_perf.parquet")
    if found:
        path, ver = found
        df = pd.read_parquet(path)
        kept = {}
        for theirs, ours in GEMM_DTYPES.items():
            sub = df[df["gemm_dtype"] == theirs]
            if sub.empty:
                continue
            sub, source = _dominant(sub)
            (m, n, k), arr = _grid(sub, ["m", "n", "k"])
            out[f"gemm_{ours}"] = arr
            out[f"gemm_{ours}_m"], out[f"gemm_{ours}_n"], out[f"gemm_{ours}_k"] = m, n, k
            kept[ours] = source
        meta["tables"]["gemm"] = {"vllm_version": ver, "kernels": kept}

    found = _latest(system_dir / "attention" / "vllm", "generation_attention_perf.parquet")
    if found:
        path, ver = found
        df = _attention_rows(pd.read_parquet(path))
        df, source = _dominant(df)
        df = df.assign(kv=df["kv_cache_dtype"].map(KV_DTYPES), ctx=df["step"])  # tokens attended
        axes, arr = _grid(df, ["kv", "head_dim", "num_heads", "num_key_value_heads", "batch_size", "ctx"])
        for name, v in zip(["kv", "head_dim", "heads", "kv_heads", "batch", "ctx"], axes):
            out[f"decode_attn_{name}"] = v
        out["decode_attn"] = arr
        meta["tables"]["decode_attention"] = {"vllm_version": ver, "kernel": source}

    found = _latest(system_dir / "attention" / "vllm", "context_attention_perf.parquet")
    if found:
        path, ver = found
        df = _attention_rows(pd.read_parquet(path))
        df, source = _dominant(df)
        df = df.assign(kv=df["kv_cache_dtype"].map(KV_DTYPES))
        axes, arr = _grid(df, ["kv", "head_dim", "num_heads", "num_key_value_heads", "batch_size", "isl"])
        for name, v in zip(["kv", "head_dim", "heads", "kv_heads", "batch", "isl"], axes):
            out[f"prefill_attn_{name}"] = v
        out["prefill_attn"] = arr
        meta["tables"]["prefill_attention"] = {"vllm_version": ver, "kernel": source}

    found = _latest(system_dir / "comm" / "vllm", "custom_allreduce_perf.parquet")
    if found:
        path, ver = found
        df = pd.read_parquet(path)
        df = df[df["backend"] == "vllm_graph"]
        (g, s), arr = _grid(df, ["num_gpus", "message_size"])
        out["allreduce_gpus"], out["allreduce_bytes"], out["allreduce"] = g, s, arr
        meta["tables"]["allreduce"] = {"vllm_version": ver, "kernel": "vLLM custom all-reduce, CUDA graph"}

    found = _latest(system_dir / "moe" / "vllm", "moe_perf.parquet")
    if found:
        path, ver = found
        df = pd.read_parquet(path)
        df = df[(df["distribution"] == MOE_DISTRIBUTION) & (df["moe_ep_size"] == 1)
                & df["moe_dtype"].isin(list(MOE_DTYPES))]
        # one kernel per (dtype, shape): the fastest source's row (vLLM picks its best backend)
        df = df.assign(ours=df["moe_dtype"].map(MOE_DTYPES))
        df = df.sort_values("latency").drop_duplicates(
            ["ours", "num_tokens", "hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size"])
        codes = {name: i for i, name in enumerate(MOE_CODES)}
        out["moe_rows"] = np.stack([
            df["ours"].map(codes).to_numpy(),
            df["hidden_size"].to_numpy(), df["inter_size"].to_numpy(), df["num_experts"].to_numpy(),
            df["topk"].to_numpy(), df["moe_tp_size"].to_numpy(), df["num_tokens"].to_numpy(),
        ], axis=1).astype(np.int32)
        out["moe_latency"] = (df["latency"].to_numpy() * 1e-3).astype(np.float32)
        meta["tables"]["moe"] = {"vllm_version": ver, "distribution": MOE_DISTRIBUTION,
                                 "dtypes": list(MOE_CODES), "kernels_merged": MOE_DTYPES,
                                 "columns": ["dtype", "hidden", "inter", "experts", "topk", "tp", "tokens"]}
    return out, meta


def refresh(dest: Path) -> dict[str, Any]:
    root = _package_root()
    dest.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "source": f"{PACKAGE} {PACKAGE_VERSION} (PyPI), aiconfigurator_core/systems/data/<gpu>/<op>/vllm/<version>/",
        "licence": LICENCE_NOTICE,
        "extracted": _dt.date.today().isoformat(),
        "units": "seconds",
        "gpus": {},
    }
    for gpu_id, system in MEASURED_GPUS.items():
        print(f"extracting {system} -> {gpu_id}.npz", file=sys.stderr)
        arrays, meta = extract_gpu(root / "data" / system)
        path = dest / f"{gpu_id}.npz"
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
        meta["system"] = system
        meta["device"] = system
        meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        manifest["gpus"][gpu_id] = meta
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


SILICON_COLUMNS = ("id", "backend", "backend_version", "model_path", "system", "precision", "mode", "isl",
                   "osl", "gemm_quant_mode", "moe_quant_mode", "batch_size", "tp_size", "attention_dp_size",
                   "moe_tp_size", "moe_ep_size", "silicon_ttft_ms", "silicon_tpot_ms")


def write_silicon_rows(dest: Path) -> int:
    """The vLLM aggregated-serving rows of silicon_sample.csv (the validation set of
    bench/silicon.py), with the columns it reads; returns how many."""
    import csv  # noqa: PLC0415

    src = _package_root() / "silicon_sample.csv"
    with open(src, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["backend"] == "vllm" and r["mode"] == "agg"]
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SILICON_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = Path(__file__).resolve().parents[2]
    parser.add_argument("--dest", type=Path, default=root / "gpu_catalog" / "kernels")
    parser.add_argument("--silicon", type=Path, default=root / "bench" / "data" / "silicon_vllm_agg.csv",
                        help="where to write the validation rows (bench/silicon.py reads them)")
    args = parser.parse_args(argv)
    manifest = refresh(args.dest)
    n = write_silicon_rows(args.silicon)
    print(f"{n} vLLM agg rows -> {args.silicon}", file=sys.stderr)
    print(json.dumps({g: m["tables"] for g, m in manifest["gpus"].items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
