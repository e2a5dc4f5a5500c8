#!/usr/bin/env bash
# h100-pcie x 1 GPU(s) per pod; run this on each of the 1 pod(s) of the plan.
# vLLM 0.24.0, the release the plan's step times describe: run it in the image vllm/vllm-openai:v0.24.0 (or pip install vllm==0.24.0).
# Disk: the checkpoint meta-llama/Llama-3.1-8B-Instruct holds 16.1 GB of weights; give the pod at least 17 GB of volume for them.
set -euo pipefail
: "${HF_TOKEN:?meta-llama/Llama-3.1-8B-Instruct is gated on Hugging Face: accept its licence on the model page, then export HF_TOKEN=<your token>}"
python3 -c 'import sys, vllm; v = vllm.__version__; v == "0.24.0" or print(f"warning: vLLM {v} installed; the plan assumes 0.24.0", file=sys.stderr)' || true
# --async-scheduling: the plan's latencies assume the engine overlaps scheduling with the GPU (no host time between steps); without it steps are slower: see `planner perf --host-overhead-ms`.
vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --tensor-parallel-size 1 \
  --max-model-len 8192 \
  --gpu-memory-utilization 0.9 \
  --max-num-seqs 1024 \
  --max-num-batched-tokens 8192 \
  --block-size 16 \
  --dtype bfloat16 \
  --enable-chunked-prefill \
  --async-scheduling
