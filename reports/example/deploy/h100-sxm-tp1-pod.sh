#!/usr/bin/env bash
# Run on each pod of the plan.
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
