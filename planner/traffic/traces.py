"""Trace readers: Azure LLM inference, Mooncake and plain CSV files into a `Workload`."""

from __future__ import annotations

import csv
import json
import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from planner.errors import PlannerError
from planner.inputs.reading import decode_utf8, regular_file
from planner.traffic.workload import Workload


# -------------------------------------------------------------------------------- trace readers
def detect_format(path: str | Path) -> str:
    """Guess a trace's format: .jsonl = mooncake; a CSV whose header has TIMESTAMP = azure; else csv."""
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".json"):
        return "mooncake"
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = fh.readline()
    return "azure" if "timestamp" in head.lower() and "contexttokens" in head.lower() else "csv"


def _parse_tokens(text: str, path: Path, line: int, column: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise PlannerError(f"{path.name} line {line}: {column} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise PlannerError(f"{path.name} line {line}: {column} {text!r} must be a whole number >= 0")
    return int(value)


def _read_azure(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Azure LLM inference trace: TIMESTAMP (wall clock text), ContextTokens, GeneratedTokens."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise PlannerError(f"{path.name}: empty trace file")
    header = [h.strip() for h in rows[0]]
    try:
        i_t, i_p, i_o = (header.index(c) for c in ("TIMESTAMP", "ContextTokens", "GeneratedTokens"))
    except ValueError:
        raise PlannerError(
            f"{path.name} line 1: Azure header must have TIMESTAMP, ContextTokens, GeneratedTokens "
            f"(got {','.join(header)}); use --format csv for a plain CSV"
        ) from None
    stamps: list[str] = []
    prompt: list[int] = []
    output: list[int] = []
    width = max(i_t, i_p, i_o) + 1
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) < width:
            raise PlannerError(f"{path.name} line {line}: expected {len(header)} columns, got {len(row)}")
        stamps.append(row[i_t].strip())
        prompt.append(_parse_tokens(row[i_p], path, line, "ContextTokens"))
        output.append(_parse_tokens(row[i_o], path, line, "GeneratedTokens"))
    try:
        times = np.array(stamps, dtype="datetime64[ns]")
    except ValueError:
        for line, stamp in enumerate(stamps, start=2):  # find the bad row to name it
            try:
                np.datetime64(stamp, "ns")
            except ValueError:
                raise PlannerError(
                    f"{path.name} line {line}: TIMESTAMP {stamp!r} is not 'YYYY-MM-DD HH:MM:SS.fff'"
                ) from None
        raise
    if np.isnat(times).any():
        line = int(np.argmax(np.isnat(times))) + 2
        raise PlannerError(f"{path.name} line {line}: TIMESTAMP is empty or NaT")
    seconds = (times - times.min()).astype(np.int64) / 1e9 if len(times) else np.zeros(0)
    return seconds, np.array(prompt, dtype=np.int64), np.array(output, dtype=np.int64)


def _read_mooncake(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mooncake JSONL: timestamp (ms from start), input_length, output_length (hash_ids ignored)."""
    times: list[float] = []
    prompt: list[int] = []
    output: list[int] = []
    with open(path, encoding="utf-8") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                row = json.loads(text)
                stamp = float(row["timestamp"])
                p, o = row["input_length"], row["output_length"]
            except json.JSONDecodeError as err:
                raise PlannerError(f"{path.name} line {line}: not valid JSON ({err.msg})") from None
            except (KeyError, TypeError) as err:
                raise PlannerError(
                    f"{path.name} line {line}: needs timestamp, input_length, output_length (missing {err})"
                ) from None
            except ValueError:
                raise PlannerError(f"{path.name} line {line}: timestamp is not a number") from None
            if not math.isfinite(stamp):
                raise PlannerError(f"{path.name} line {line}: timestamp is not finite")
            times.append(stamp / 1000.0)  # ms -> s
            prompt.append(_parse_tokens(str(p), path, line, "input_length"))
            output.append(_parse_tokens(str(o), path, line, "output_length"))
    return np.array(times, dtype=np.float64), np.array(prompt, dtype=np.int64), np.array(output, dtype=np.int64)


# Column names a plain CSV header may use (lower case): ours, Vidur's processed traces, Mooncake's.
_CSV_COLUMNS = {
    "arrival": ("arrival_s", "arrival_seconds", "arrival", "arrived_at", "timestamp", "time_s", "time"),
    "prompt": ("prompt_tokens", "num_prefill_tokens", "input_length", "input_tokens", "contexttokens"),
    "output": ("output_tokens", "num_decode_tokens", "output_length", "generatedtokens"),
}


def _read_plain_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain CSV: arrival seconds, prompt tokens, output tokens (an optional header names them)."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    rows_numbered = [(i, r) for i, r in enumerate(rows, start=1) if r and any(c.strip() for c in r)]
    if not rows_numbered:
        raise PlannerError(f"{path.name}: empty trace file")
    cols = (0, 1, 2)
    first = rows_numbered[0][1]
    try:
        float(first[0])
    except ValueError:  # a header row
        names = [c.strip().lower() for c in first]
        found = [next((names.index(n) for n in _CSV_COLUMNS[key] if n in names), None)
                 for key in ("arrival", "prompt", "output")]
        if None in found:
            raise PlannerError(
                f"{path.name} line {rows_numbered[0][0]}: header must name arrival_s, prompt_tokens, "
                f"output_tokens (got {','.join(first)})"
            )
        cols = tuple(found)  # type: ignore[assignment]
        rows_numbered = rows_numbered[1:]
    width = max(cols) + 1
    times = np.empty(len(rows_numbered))
    prompt = np.empty(len(rows_numbered), dtype=np.int64)
    output = np.empty(len(rows_numbered), dtype=np.int64)
    for k, (line, row) in enumerate(rows_numbered):
        if len(row) < width:
            raise PlannerError(f"{path.name} line {line}: expected {width} columns, got {len(row)}")
        try:
            times[k] = float(row[cols[0]])
        except ValueError:
            raise PlannerError(f"{path.name} line {line}: arrival {row[cols[0]]!r} is not a number of seconds") from None
        if not math.isfinite(times[k]):
            raise PlannerError(f"{path.name} line {line}: arrival is not finite")
        prompt[k] = _parse_tokens(row[cols[1]], path, line, "prompt_tokens")
        output[k] = _parse_tokens(row[cols[2]], path, line, "output_tokens")
    return times, prompt, output


@lru_cache(maxsize=16)
def _read_trace_cached(path: str, fmt: str, mtime_ns: int) -> Workload:
    readers = {"azure": _read_azure, "mooncake": _read_mooncake, "csv": _read_plain_csv}
    times, prompt, output = readers[fmt](Path(path))
    if len(times) == 0:
        raise PlannerError(f"{Path(path).name}: the trace has no requests")
    order = np.argsort(times, kind="stable")  # traces are usually sorted; keep ties in file order
    times = times[order] - times[order][0]
    # Every request generates at least one token (the one its TTFT measures).
    output = np.maximum(output[order], 1)
    duration = float(times[-1])
    return Workload(times, prompt[order], output, duration if duration > 0 else 1.0, f"{Path(path).name} ({fmt})")


def read_trace(path: str | Path, format: str | None = None) -> Workload:
    """Read a whole trace; arrivals start at 0, sizes are kept as recorded (no capping).

    Args:
        path: the trace file.
        format: "azure" | "mooncake" | "csv"; None = detected from the file.
    Returns:
        The Workload, horizon_s = last arrival - first (1 s for a single request).
    Raises:
        PlannerError: missing file, unknown format, or a malformed row (the message names the line).
    """
    path = regular_file(path, "trace file")
    fmt = format or detect_format(path)
    if fmt not in ("azure", "mooncake", "csv"):
        raise PlannerError(f"unknown trace format {fmt!r}: use azure, mooncake or csv")
    try:
        return _read_trace_cached(str(path.resolve()), fmt, os.stat(path).st_mtime_ns)
    except UnicodeDecodeError:
        decode_utf8(path.read_bytes(), path, "trace file")  # raises, naming the byte and line
        raise
    except csv.Error as err:
        raise PlannerError(f"trace file {path} is not a {fmt} trace ({err}): check the file and --format") from None


