"""Read the result files `vllm bench serve --save-result` (older: `benchmarks/benchmark_serving.py
--save-result`) writes, as pydantic models, and check them against the setup a user calibrates.

What vLLM writes (vllm/benchmarks/serve.py, `main_async` and `benchmark`; the fields grew over
versions, so every one is optional here and the fit asks only for what it needs):

- setup: `date` ("%Y%m%d-%H%M%S"), `backend` (and `endpoint_type` from 2025), `label`, `model_id`,
  `tokenizer_id`, `num_prompts`; 2024 files add `best_of`, `use_beam_search` and, earliest,
  `version`.
- every `--metadata KEY=VALUE` pair as a top-level string field (no "metadata" object). The fit
  reads `gpu`, `tensor_parallel_size` (or `tp`), `vllm_version`, `quantization` and the random
  dataset's `random_input_len` / `random_output_len` when a user recorded them there.
- traffic: `request_rate` (a number or the string "inf"), `burstiness` (gamma shape; 1 = Poisson;
  from late 2024), `max_concurrency` (int or null; from late 2024), and the ramp-up fields.
- results: `duration` (s), `completed`, `failed`, `total_input_tokens`, `total_output_tokens`,
  throughputs, and `mean_/median_/std_/pNN_` of `ttft`, `tpot`, `itl`, `e2el` in milliseconds.
- `--save-detailed` (before it existed, always): per request `input_lens`, `output_lens` (0 for a
  failed request), `ttfts` and `itls` (seconds), `errors` ("" when it succeeded), later also
  `latencies`, `start_times`, `queue_times`, and `generated_texts` (which we never need).
- `--append-result` appends one JSON object per line to the same file: each line is one run here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planner.errors import PlannerError, validation_line

MS = 1e-3  # vLLM writes latencies in milliseconds; we keep seconds inside

# Every field name some version of vLLM's serving benchmark writes besides the percentile metrics.
_VLLM_FIELDS = frozenset({
    "date", "backend", "endpoint_type", "label", "version", "model_id", "tokenizer_id", "best_of",
    "use_beam_search", "num_prompts", "request_rate", "burstiness", "max_concurrency",
    "ramp_up_strategy", "ramp_up_start_rps", "ramp_up_end_rps", "duration", "completed", "failed",
    "total_input_tokens", "total_output_tokens", "total_input_sequences", "request_throughput",
    "request_goodput", "request_goodput:", "request_inthroughput", "input_throughput",
    "output_throughput", "total_token_throughput", "input_sequence_throughput",
    "max_output_tokens_per_s", "max_concurrent_requests", "rtfx", "input_lens", "output_lens",
    "ttfts", "itls", "latencies", "start_times", "queue_times", "generated_texts", "errors",
    "rps_change_events",
})
# mean_ttft_ms, p99_itl_ms, p99.9_e2el_ms, median_client_queue_time_ms, ...
_METRIC_FIELD = re.compile(r"^(mean|median|std|p\d+(\.\d+)?)_[a-z0-9_]+_ms$")
_OTHER_PREFIXES = ("spec_decode_", "diffusion_", "probe_")
_OURS = frozenset({"source", "run_index", "sha256", "metadata", "other_fields"})  # never read from a file


class VllmBenchResult(BaseModel):
    """One run of `vllm bench serve`, as its result file holds it (vLLM's field names and units:
    milliseconds for the latency statistics, seconds for the per-request lists).

    `source`, `run_index`, `sha256` and `metadata` are ours: where the run came from and the
    `--metadata` pairs (every top-level string field vLLM itself does not write).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="the file's path as given, plus '#N' for the N-th run of an appended file")
    run_index: int = 0
    sha256: str = Field(description="SHA-256 of the file's bytes")
    metadata: dict[str, str] = Field(default_factory=dict, description="--metadata KEY=VALUE pairs")
    other_fields: list[str] = Field(default_factory=list, description="fields the fit does not read")

    date: str | None = None
    backend: str | None = None
    endpoint_type: str | None = None
    label: str | None = None
    model_id: str
    tokenizer_id: str | None = None
    num_prompts: int | None = Field(None, ge=0)
    request_rate: float | None = Field(None, gt=0, description="requests/s; inf = all sent at once")
    burstiness: float = Field(1.0, gt=0, description="gamma shape of the inter-arrival times; 1 = Poisson")
    max_concurrency: int | None = Field(None, gt=0)
    ramp_up_strategy: str | None = None
    duration: float | None = Field(None, gt=0, description="seconds")
    completed: int | None = Field(None, ge=0)
    failed: int | None = Field(None, ge=0)
    total_input_tokens: int | None = Field(None, ge=0)
    total_output_tokens: int | None = Field(None, ge=0)
    request_throughput: float | None = None
    output_throughput: float | None = None
    mean_ttft_ms: float | None = Field(None, ge=0)
    median_ttft_ms: float | None = Field(None, ge=0)
    p99_ttft_ms: float | None = Field(None, ge=0)
    mean_tpot_ms: float | None = Field(None, ge=0)
    median_tpot_ms: float | None = Field(None, ge=0)
    p99_tpot_ms: float | None = Field(None, ge=0)
    mean_itl_ms: float | None = Field(None, ge=0)
    median_itl_ms: float | None = Field(None, ge=0)
    p99_itl_ms: float | None = Field(None, ge=0)
    input_lens: list[int] | None = None
    output_lens: list[int] | None = None
    ttfts: list[float | None] | None = None
    itls: list[list[float]] | None = None
    latencies: list[float | None] | None = None
    errors: list[str | None] | None = None

    # ------------------------------------------------------------------ what the run recorded

    @property
    def name(self) -> str:
        return self.source

    def meta(self, *keys: str) -> str | None:
        """The first of `keys` present in the --metadata pairs (stripped), else None."""
        for key in keys:
            value = self.metadata.get(key)
            if value is not None and value.strip() and value.strip().upper() != "N/A":
                return value.strip()
        return None

    @property
    def gpu(self) -> str | None:
        return self.meta("gpu", "gpu_name", "gpu_type", "hardware")

    @property
    def vllm_version(self) -> str | None:
        return self.meta("vllm_version", "version")

    @property
    def quantization(self) -> str | None:
        return self.meta("quantization")

    def tensor_parallel_size(self) -> int | None:
        """The run's TP from --metadata, or None.

        Raises:
            PlannerError: the value is not a positive integer.
        """
        raw = self.meta("tensor_parallel_size", "tp")
        if raw is None:
            return None
        if not raw.isdigit() or int(raw) < 1:
            raise PlannerError(f"{self.source}: tensor_parallel_size: {raw!r} is not a positive integer: fix the --metadata pair")
        return int(raw)

    def meta_int(self, key: str) -> int | None:
        raw = self.meta(key)
        if raw is None:
            return None
        try:
            value = int(float(raw))
        except ValueError:
            raise PlannerError(f"{self.source}: {key}: {raw!r} is not a number: fix the --metadata pair") from None
        if value < 1:
            raise PlannerError(f"{self.source}: {key}: must be >= 1 (got {raw})")
        return value

    @property
    def closed_loop(self) -> bool:
        """True when clients were capped (`--max-concurrency`): each sends when a slot frees."""
        return self.max_concurrency is not None

    @property
    def open_rate_per_s(self) -> float | None:
        """The arrival rate when arrivals were timed (finite --request-rate), else None (all at t=0)."""
        return self.request_rate if self.request_rate is not None and math.isfinite(self.request_rate) else None

    def require(self, *fields: str) -> None:
        """Raise one line naming the first of `fields` this run lacks.

        Raises:
            PlannerError: '<file>: field <name> is missing ...'.
        """
        for field in fields:
            if getattr(self, field) is None:
                raise PlannerError(
                    f"{self.source}: field {field!r} is missing, and the fit needs it: pass a file "
                    "`vllm bench serve --save-result` wrote (add --save-detailed for per-request data)"
                )

    def succeeded(self) -> np.ndarray:
        """Mask of the requests that completed, for the per-request lists (all True without errors)."""
        n = len(self.input_lens or self.output_lens or [])
        if self.errors is not None and len(self.errors) == n:
            return np.array([not e for e in self.errors], dtype=bool)
        if self.output_lens is not None:
            return np.asarray(self.output_lens) > 0
        return np.ones(n, dtype=bool)


class RequestLengths(BaseModel):
    """Prompt and output lengths to replay a run with, and where they came from."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: list[int]
    output_tokens: list[int]
    source: str
    estimated: bool
    per_request: bool = Field(False, description="one entry per succeeded request of the file, in its order")


def request_lengths(run: VllmBenchResult) -> RequestLengths:
    """The run's requests' lengths: per request when it was saved with --save-detailed, else the
    random dataset's fixed lengths from --metadata, else the mean lengths from the totals (marked
    estimated: a spread of lengths around that mean is not known).

    Raises:
        PlannerError: the file has none of these (names the fields to add).
    """
    if run.input_lens is not None and run.output_lens is not None:
        if len(run.input_lens) != len(run.output_lens):
            raise PlannerError(f"{run.source}: input_lens and output_lens differ in length: the file is damaged")
        ok = run.succeeded()
        prompt = [int(p) for p, good in zip(run.input_lens, ok) if good]
        output = [max(1, int(o)) for o, good in zip(run.output_lens, ok) if good]
        if prompt:
            return RequestLengths(prompt_tokens=prompt, output_tokens=output, per_request=True,
                                  source="per-request input_lens/output_lens (--save-detailed)", estimated=False)
    n = run.completed if run.completed is not None else (len(run.input_lens) if run.input_lens else None)
    isl, osl = run.meta_int("random_input_len"), run.meta_int("random_output_len")
    if isl is not None and osl is not None and n:
        return RequestLengths(prompt_tokens=[isl] * n, output_tokens=[osl] * n,
                              source="random_input_len/random_output_len from --metadata", estimated=False)
    if n and run.total_input_tokens is not None and run.total_output_tokens is not None:
        isl = max(1, round(run.total_input_tokens / n))
        osl = max(1, round(run.total_output_tokens / n))
        return RequestLengths(prompt_tokens=[isl] * n, output_tokens=[osl] * n,
                              source="mean lengths from total_input_tokens/total_output_tokens / completed "
                              "(estimated: no per-request lengths in the file)", estimated=True)
    missing = "completed" if not n else ("total_input_tokens" if run.total_input_tokens is None else "total_output_tokens")
    raise PlannerError(
        f"{run.source}: field {missing!r} is missing and there are no per-request lengths: rerun "
        "`vllm bench serve` with --save-result --save-detailed"
    )


def request_latencies(run: VllmBenchResult) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Each succeeded request's measured TTFT and decode time (first to last token), seconds, in
    the file's order (as `request_lengths` lists them), or None where the file lacks them.

    TTFT: `ttfts`. Decode: the sum of the request's `itls`, else `latencies` - `ttfts` (vLLM's TPOT
    is (latency - ttft) / (tokens - 1); the gaps sum to the same span).
    """
    n = len(run.input_lens or [])
    ok = run.succeeded()

    def kept(values: list[Any] | None) -> list[Any] | None:
        if values is None or len(values) != n or n == 0:
            return None
        return [v for v, good in zip(values, ok) if good]

    ttft, itls, latency = kept(run.ttfts), kept(run.itls), kept(run.latencies)
    if ttft is not None and any(t is None for t in ttft):
        ttft = None
    decode = None
    if itls is not None:
        decode = np.array([float(sum(gaps)) for gaps in itls])
    elif latency is not None and ttft is not None and all(v is not None for v in latency):
        decode = np.array(latency, dtype=float) - np.array(ttft, dtype=float)
    return (None if ttft is None else np.array(ttft, dtype=float)), decode


# ---------------------------------------------------------------------- reading files


def _not_vllm(path: str, why: str) -> PlannerError:
    return PlannerError(
        f"{path}: not a `vllm bench serve --save-result` result ({why}): pass the .json file that "
        "command wrote"
    )


def _objects(path: str, text: str) -> list[Any]:
    """The JSON values of a file: one object, or one per line (--append-result)."""
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as first:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1:
            try:
                return [json.loads(ln) for ln in lines]
            except json.JSONDecodeError:
                pass
        raise PlannerError(f"{path}: not JSON (line {first.lineno}: {first.msg}): pass the result file of `vllm bench serve --save-result`") from None


def _split_fields(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """vLLM's own fields (those our model reads), the --metadata pairs, and the names of the rest."""
    known, metadata, other = {}, {}, []
    for key, value in raw.items():
        if key in VllmBenchResult.model_fields and key not in _OURS:
            known[key] = value
        elif key in _VLLM_FIELDS or _METRIC_FIELD.match(key) or key.startswith(_OTHER_PREFIXES):
            other.append(key)
        elif isinstance(value, str):
            metadata[key] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            metadata[key] = str(value)  # hand-edited metadata (numbers): keep them readable
        else:
            other.append(key)
    return known, metadata, other


def _one_run(path: str, index: int, count: int, raw: Any, sha: str) -> VllmBenchResult:
    where = f"{path}#{index + 1}" if count > 1 else path
    if isinstance(raw, list):
        if raw and isinstance(raw[0], dict) and {"benchmark", "metric"} <= set(raw[0]):
            raise _not_vllm(where, "it is the PyTorch-benchmark-format companion (.pytorch.json)")
        raise _not_vllm(where, "a JSON list, not a result object")
    if not isinstance(raw, dict):
        raise _not_vllm(where, f"a JSON {type(raw).__name__}, not a result object")
    if "model_id" not in raw or not any(k in raw for k in ("mean_ttft_ms", "completed", "request_throughput")):
        keys = ", ".join(sorted(map(str, raw))[:4]) or "no fields"
        raise _not_vllm(where, f"no model_id or mean_ttft_ms; it has {keys}...")
    known, metadata, other = _split_fields(raw)
    rate = known.get("request_rate")
    if isinstance(rate, str):
        try:
            known["request_rate"] = float(rate)
        except ValueError:
            raise PlannerError(f"{where}: request_rate: {rate!r} is not a number or 'inf'") from None
    try:
        run = VllmBenchResult(source=where, run_index=index, sha256=sha, metadata=metadata,
                              other_fields=sorted(other), **known)
    except ValidationError as err:
        raise PlannerError(f"{where}: {validation_line(err, 'file')}") from None
    if run.completed == 0:
        raise PlannerError(f"{where}: completed is 0 (every request failed): fix the server or the benchmark and rerun it")
    if run.ramp_up_strategy:
        raise PlannerError(f"{where}: a --ramp-up-strategy run cannot be replayed: calibrate with a fixed --request-rate or --max-concurrency")
    return run


def read_result_file(path: str | Path) -> list[VllmBenchResult]:
    """Every run in one result file (one, or one per line for --append-result files).

    Raises:
        PlannerError: missing/unreadable file, not JSON, a file from another tool, a run with 0
        completed requests, a ramp-up run, or a field of the wrong type (each names the file).
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise PlannerError(f"{name}: no such file: pass the result file of `vllm bench serve --save-result`") from None
    except OSError as err:
        raise PlannerError(f"{name}: cannot read ({err.strerror})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PlannerError(f"{name}: not JSON (not UTF-8 text): pass the result file of `vllm bench serve --save-result`") from None
    sha = hashlib.sha256(data).hexdigest()
    objects = _objects(name, text)
    return [_one_run(name, i, len(objects), raw, sha) for i, raw in enumerate(objects)]


def read_result_files(paths: list[str] | list[Path]) -> list[VllmBenchResult]:
    """All runs of several result files, in order."""
    if not paths:
        raise PlannerError("no result files: pass one or more RESULT.json files written by `vllm bench serve --save-result`")
    return [run for path in paths for run in read_result_file(path)]


# ---------------------------------------------------------------------- agreement with the arguments


def _tokens(text: str) -> list[str]:
    text = text.lower().replace("nvidia", " ").replace("geforce", " ").replace("amd", " ").replace("instinct", " ")
    return [t for t in re.split(r"[^a-z0-9]+", text) if t]


_FORM_FACTORS = {"sxm", "sxm4", "sxm5", "pcie", "nvl", "hgx"}


def gpu_names_match(recorded: str, gpu_id: str, gpu_name: str, also: tuple[str, ...] = ()) -> bool:
    """Whether a GPU named in a file's metadata ("H200", "NVIDIA H100 80GB HBM3", "h100-sxm") is the
    catalog GPU `gpu_id` ("h100-sxm", named "NVIDIA H100 SXM 80GB"): same family token (h100, a100,
    l40s, ...) and no other form factor (sxm vs pcie vs nvl) or memory size named."""
    rec = _tokens(recorded)
    if not rec:
        return False
    for ident in (gpu_id, gpu_name, *also):
        cand = _tokens(ident)
        if not cand:
            continue
        if rec == cand:
            return True
        if rec[0] != cand[0]:
            continue
        rec_ff = {t.rstrip("45") for t in rec if t in _FORM_FACTORS}
        cand_ff = {t.rstrip("45") for t in cand if t in _FORM_FACTORS}
        if rec_ff and cand_ff and not (rec_ff & cand_ff):
            continue
        rec_mem = {t for t in rec if re.fullmatch(r"\d+gb", t)}
        cand_mem = {t for t in cand if re.fullmatch(r"\d+gb", t)}
        if rec_mem and cand_mem and not (rec_mem & cand_mem):
            continue
        return True
    return False


def _model_base(name: str) -> str:
    """The last meaningful path component of a model name, lower-case: a Hugging Face id's repo
    name, a folder's name, or for a config.json path the folder holding it (a .json suffix dropped)."""
    parts = [p for p in name.replace("\\", "/").rstrip("/").split("/") if p]
    if not parts:
        return ""
    last = parts[-1]
    if last.lower() == "config.json" and len(parts) > 1:
        last = parts[-2]
    elif last.lower().endswith(".json"):
        last = last[: -len(".json")]
    return last.lower()


def model_names_match(recorded: str, model: str, resolve: Any) -> bool:
    """Whether a file's `model_id` (a Hugging Face id or a local path) is the model given as
    `--model`: both resolve to the same preset (`resolve(name) -> preset id or None`), or their last
    path components agree ignoring case (a config.json path counts by its folder)."""
    base, mine = _model_base(recorded), _model_base(model)
    ours, theirs = resolve(model), resolve(recorded) or resolve(base)
    if ours is not None and theirs is not None:
        return bool(ours == theirs)
    return base == mine or (ours is not None and base == ours)
