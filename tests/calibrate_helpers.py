"""Write simulator-made 'measured' result files (planner.calibrate.synthetic) for the fit's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from planner.inputs.bench_calibration import Corrections
from planner.calibrate.synthetic import measured, recovery_runs, run_doc  # noqa: F401  (re-exported for the tests)


def measure(docs: list[dict[str, Any]], folder: Path, build_setup: Any, truth: Corrections, *,
            noise: float, rng: np.random.Generator, seed: int = 0, detailed: bool = False) -> list[Path]:
    """Write each document, its latencies simulated under `truth` with `noise` per request."""
    setup = build_setup(truth)
    paths = []
    for k, doc in enumerate(docs):
        path = folder / f"run{k}.json"
        path.write_text(json.dumps(measured(doc, setup, noise=noise, rng=rng, seed=seed, detailed=detailed)))
        paths.append(path)
    return paths
