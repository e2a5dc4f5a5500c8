"""Fit the corrections to measured runs: least squares on the relative errors of the mean TTFT,
TPOT and ITL of every run, each run re-simulated as vLLM's client ran it.

- At most three parameters (corrections.py), each bounded; never one per run or per point.
- Residuals: simulated / measured - 1 for each run's mean TTFT, TPOT and ITL (those it has).
- Solver: scipy.optimize.least_squares (trust-region reflective, bounds), finite differences of
  5% on the simulator (its event order makes the response slightly jumpy, so tiny steps give
  noisy slopes), restarted from its answer with 2% and 10% steps while that still lowers the cost
  (a trust region that shrank on a jump stops early; other slopes get it moving again). The
  per-step overhead is solved in milliseconds so every variable is of order one.
- Uncertainty: the Gauss-Newton standard error (residual variance x (J'J)^-1 at the fit) decides
  whether each value is determined; a two-level bootstrap, linearised at the fit, gives its 95%
  interval. Each resample draws the files with replacement and, in every file that lists its
  requests' latencies (--save-detailed: ttfts, and itls or latencies), the requests with
  replacement, measured and simulated paired (a resample of long prompts is predicted long too);
  it is solved by one Gauss-Newton step on the fit's Jacobian, centred on the fit (the step the
  unresampled data would take is taken off), then clipped to the bounds. The
  spread says how much the answer depends on which runs, and which requests in them, were
  measured. With one file only its requests can be resampled (none: no interval), and the fit is
  called weakly determined either way.
- Leave-one-file-out with three files or more: refit without each file (starting from the full
  fit) and predict it: the errors a new run of the same setup should expect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import least_squares

from planner.inputs.bench_calibration import BOUNDS, CORRECTION_NAMES, Corrections
from planner.calibrate.replay import METRICS, Replay, latency_means, predict, predict_requests
from planner.errors import PlannerError

# Internal units: the overhead in milliseconds, the scales as they are.
_UNIT = {"gemm_scale": 1.0, "attention_scale": 1.0, "step_overhead_s": 1e-3}
# Finite-difference steps (relative) of successive solves. The first is coarse (the simulator's
# response is slightly jumpy, so tiny steps give noisy slopes); when a solve stops because its
# trust region shrank on a jump, the next one starts from its answer with another step, hence
# other slopes, and goes on if that lowers the cost.
DIFF_STEPS = (0.05, 0.02, 0.1)
MAX_SOLVES = 6
# Where the solver starts: the identity, but 1 ms of overhead. A variable starting exactly on its
# bound (0 s) barely moves in the trust-region-reflective method, which scales steps by the
# distance to the bound.
_START = {"gemm_scale": 1.0, "attention_scale": 1.0, "step_overhead_s": 1e-3}
# A parameter whose standard error exceeds this share of its value (of 1 ms for the overhead) is
# called weakly determined.
WEAK_SPREAD = 0.10


class FileFit(BaseModel):
    """One run: what was measured, what the model predicted before and after the fit."""

    model_config = ConfigDict(extra="forbid")

    source: str
    traffic: str
    requests_replayed: int
    lengths_source: str
    lengths_estimated: bool
    measured_ms: dict[str, float] = Field(description="metric (ttft, tpot, itl) -> measured mean, ms")
    before_ms: dict[str, float] = Field(description="the model without corrections")
    after_ms: dict[str, float] = Field(description="the model with the fitted corrections")
    fitted_metrics: list[str] = Field(default_factory=lambda: list(METRICS),
                                      description="the metrics the fit used (the others are shown, not fitted)")
    resampled_requests: bool = Field(False, description="the bootstrap resampled this file's requests")
    before_error: dict[str, float] = Field(description="predicted / measured - 1, before")
    after_error: dict[str, float] = Field(description="predicted / measured - 1, after")
    held_out_error: dict[str, float] | None = Field(
        None, description="predicted / measured - 1 by a fit to the other files (leave-one-file-out)")
    notes: list[str] = Field(default_factory=list)


class FittedValue(BaseModel):
    """One fitted correction with its bootstrap spread."""

    model_config = ConfigDict(extra="forbid")

    name: str
    value: float
    std_error: float | None = Field(None, description="Gauss-Newton standard error; None without spare data")
    low: float | None = Field(None, description="2.5th percentile of the bootstrap")
    high: float | None = Field(None, description="97.5th percentile of the bootstrap")
    lower_bound: float
    upper_bound: float
    at_bound: bool
    determined: bool = Field(description="False when the data barely constrain it")


class FitOutcome(BaseModel):
    """The fit: corrections, their uncertainty, and the error on every run before and after."""

    model_config = ConfigDict(extra="forbid")

    corrections: Corrections
    values: list[FittedValue]
    files: list[FileFit]
    rms_error_before: float = Field(description="root mean square of the fitted relative errors, before")
    rms_error_after: float
    rms_error_held_out: float | None = None
    weakly_determined: bool
    uncertainty_method: str
    bootstrap_samples: int
    solver_evaluations: int
    notes: list[str] = Field(default_factory=list)


def _rms(values: Sequence[float]) -> float:
    return float(np.sqrt(np.mean(np.square(values)))) if len(values) else 0.0


class _Problem:
    """Residuals of a set of runs as a function of the internal parameter vector (cached)."""

    def __init__(self, replays: Sequence[Replay], build_setup: Callable[[Corrections], Any],
                 names: tuple[str, ...], start: Corrections, progress: Callable[[], None] | None) -> None:
        self.replays = list(replays)
        self.build_setup = build_setup
        self.names = names
        self.start = start
        self.progress = progress
        self.cache: dict[tuple[float, ...], list[dict[str, float]]] = {}
        self.evaluations = 0

    def corrections(self, x: np.ndarray) -> Corrections:
        return self.start.with_values(self.names, [v * _UNIT[n] for n, v in zip(self.names, x)])

    def predictions(self, x: np.ndarray) -> list[dict[str, float]]:
        key = tuple(float(v) for v in x)
        if key not in self.cache:
            setup = self.build_setup(self.corrections(x))
            self.cache[key] = [predict(r, setup) for r in self.replays]
            self.evaluations += 1
            if self.progress is not None:
                self.progress()
        return self.cache[key]

    def residual_index(self, subset: Sequence[int]) -> list[tuple[int, str]]:
        return [(i, m) for i in subset for m in METRICS
                if m in self.replays[i].measured and m in self.replays[i].fit_metrics]

    def residuals(self, x: np.ndarray, subset: Sequence[int]) -> np.ndarray:
        pred = self.predictions(x)
        return np.array([pred[i][m] / self.replays[i].measured[m] - 1.0 for i, m in self.residual_index(subset)])

    def solve(self, x0: np.ndarray, subset: Sequence[int]) -> Any:
        lo = np.array([BOUNDS[n][0] / _UNIT[n] for n in self.names])
        hi = np.array([BOUNDS[n][1] / _UNIT[n] for n in self.names])
        best = None
        x = np.clip(x0, lo, hi)
        stalled = 0
        for k in range(MAX_SOLVES):
            sol = least_squares(lambda v: self.residuals(v, subset), x, bounds=(lo, hi), method="trf",
                                diff_step=DIFF_STEPS[k % len(DIFF_STEPS)], x_scale=1.0, xtol=1e-4, ftol=1e-6,
                                gtol=1e-8)
            if best is None or sol.cost < best.cost * (1.0 - 1e-3):
                best, x, stalled = sol, sol.x, 0
            else:
                stalled += 1
                if stalled >= len(DIFF_STEPS) - 1:  # every other step tried from this answer
                    break
        return best


def _errors(pred: dict[str, float], measured: dict[str, float]) -> dict[str, float]:
    return {m: pred[m] / measured[m] - 1.0 for m in METRICS if m in measured and m in pred}


def _ms(values: dict[str, float]) -> dict[str, float]:
    return {m: v * 1e3 for m, v in values.items()}


def _request_means(ttft_s: np.ndarray, decode_s: np.ndarray | None, output_tokens: np.ndarray) -> dict[str, float]:
    """vLLM's mean TTFT (and TPOT, ITL when the decode times are known) of some requests."""
    if decode_s is None:
        return {"ttft": float(np.mean(ttft_s))}
    return latency_means(ttft_s, decode_s, output_tokens)


class _RequestSample:
    """One file's requests, measured and simulated at the fit, for resampling them in pairs."""

    def __init__(self, replay: Replay, simulated: tuple[np.ndarray, np.ndarray]) -> None:
        self.ttft = replay.request_ttft_s
        self.decode = replay.request_decode_s
        self.sim_ttft, self.sim_decode = simulated
        self.output = replay.output_tokens
        self.full = self.ratios(np.arange(len(self.output)))

    def ratios(self, idx: np.ndarray) -> dict[str, float]:
        """Simulated / measured mean of each metric the file's request lists give, over `idx`."""
        assert self.ttft is not None
        measured = _request_means(self.ttft[idx], None if self.decode is None else self.decode[idx], self.output[idx])
        simulated = _request_means(self.sim_ttft[idx], None if self.decode is None else self.sim_decode[idx],
                                   self.output[idx])
        return {m: simulated[m] / measured[m] for m in measured if measured[m] > 0}

    def shift(self, rng: np.random.Generator) -> dict[str, float]:
        """How much each residual moves when the file's requests are drawn again with replacement."""
        n = len(self.output)
        got = self.ratios(rng.integers(0, n, n))
        return {m: got[m] - self.full[m] for m in got if m in self.full}


def _request_samples(problem: _Problem, x: np.ndarray) -> dict[int, _RequestSample]:
    """The files whose requests can be resampled (they list per-request TTFTs), simulated at x."""
    setup = problem.build_setup(problem.corrections(x))
    return {i: _RequestSample(rep, predict_requests(rep, setup)) for i, rep in enumerate(problem.replays)
            if rep.request_ttft_s is not None and len(rep.request_ttft_s) == len(rep.output_tokens) > 1}


def _bootstrap(problem: _Problem, x: np.ndarray, jac: np.ndarray, samples: int, seed: int,
               requests: dict[int, _RequestSample]) -> np.ndarray | None:
    """Linearised two-level bootstrap: files with replacement, then each drawn file's requests
    with replacement (where it lists them); one Gauss-Newton step per resample."""
    n_files = len(problem.replays)
    if samples <= 0 or (n_files < 2 and not requests):
        return None
    index = problem.residual_index(range(n_files))
    r = problem.residuals(x, range(n_files))
    rows_of = {i: [k for k, (f, _) in enumerate(index) if f == i] for i in range(n_files)}
    lo = np.array([BOUNDS[n][0] / _UNIT[n] for n in problem.names])
    hi = np.array([BOUNDS[n][1] / _UNIT[n] for n in problem.names])
    # Centred on the fit: the step the unresampled data would take from x (not zero when the
    # solver stopped near a bound or on a jump of the simulator) is taken off every resample's.
    centre, *_ = np.linalg.lstsq(jac, r, rcond=None)
    rng = np.random.default_rng(seed)
    draws = np.empty((samples, len(x)))
    for b in range(samples):
        files = rng.integers(0, n_files, n_files) if n_files > 1 else np.zeros(1, dtype=int)
        res: list[float] = []
        rows: list[int] = []
        for f in files.tolist():
            shift = requests[f].shift(rng) if f in requests else {}
            for k in rows_of[f]:
                res.append(r[k] + shift.get(index[k][1], 0.0))
                rows.append(k)
        if not rows:  # only files without a fitted mean were drawn
            draws[b] = x
            continue
        step, *_ = np.linalg.lstsq(jac[rows], np.array(res), rcond=None)
        draws[b] = np.clip(x - (step - centre), lo, hi)
    return draws


def _standard_errors(residuals: np.ndarray, jac: np.ndarray) -> np.ndarray | None:
    """Gauss-Newton standard errors: sqrt(diag(s^2 (J'J)^-1)), s^2 = RSS / (m - p); None without
    spare measurements or with a singular J'J (a direction the data do not see)."""
    m, p = jac.shape
    if m <= p:
        return None
    s2 = float(residuals @ residuals) / (m - p)
    try:
        cov = s2 * np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        return None
    diag = np.diag(cov)
    return None if np.any(diag < 0) else np.sqrt(diag)


def _method(done: bool, n_files: int, n_request_files: int) -> str:
    """How the interval was made, in words (the GPU YAML's `method` ends with it)."""
    if not done:
        return "none (one file without per-request latencies)" if n_files < 2 else "none"
    if n_files == 1:
        over = "the requests of the one file"
    elif n_request_files:
        over = f"files and the requests within the {n_request_files} of {n_files} that list them"
    else:
        over = "files"
    return f"bootstrap over {over}, linearised at the fit (one Gauss-Newton step per resample)"


def fit_corrections(
    replays: Sequence[Replay],
    build_setup: Callable[[Corrections], Any],
    *,
    names: tuple[str, ...] = CORRECTION_NAMES,
    bootstrap_samples: int = 400,
    leave_one_out: bool = True,
    seed: int = 0,
    progress: Callable[[], None] | None = None,
) -> FitOutcome:
    """Fit `names` (at most the three corrections) to `replays`.

    Args:
        replays: the runs (replay.make_replay), one or more.
        build_setup: corrections -> a planner.sim ReplicaSetup of the calibrated setup.
        names: which corrections to fit; the others stay at their identity value.
        bootstrap_samples: resamples of the files for the uncertainty (0: none).
        leave_one_out: with three files or more, refit without each one and predict it.
        progress: called after every simulated evaluation of all runs.
    Raises:
        PlannerError: no runs, an unknown correction, or more parameters than measured values.
    """
    if not replays:
        raise PlannerError("no runs to fit: pass one or more result files")
    unknown = [n for n in names if n not in CORRECTION_NAMES]
    if unknown or not names or len(set(names)) != len(names):
        raise PlannerError(f"corrections to fit must be some of {', '.join(CORRECTION_NAMES)} (got {', '.join(names) or 'none'})")
    start = Corrections()
    problem = _Problem(replays, build_setup, tuple(names), start, progress)
    everything = list(range(len(replays)))
    n_res = len(problem.residual_index(everything))
    if n_res < len(names):
        raise PlannerError(f"{n_res} measured values cannot fit {len(names)} corrections: add result files or fit fewer (--fit)")
    identity = np.array([getattr(start, n) / _UNIT[n] for n in names])
    before = problem.predictions(identity)
    sol = problem.solve(np.array([_START[n] / _UNIT[n] for n in names]), everything)
    x = sol.x
    after = problem.predictions(x)
    fitted = problem.corrections(x)
    notes: list[str] = []

    requests = _request_samples(problem, x) if bootstrap_samples > 0 else {}
    draws = _bootstrap(problem, x, sol.jac, bootstrap_samples, seed, requests)
    errors = _standard_errors(sol.fun, sol.jac)
    values: list[FittedValue] = []
    for k, name in enumerate(names):
        lo_b, hi_b = BOUNDS[name]
        value = getattr(fitted, name)
        # Within 2% of the range of a bound counts as on it; no overhead (0 s) is a plausible answer
        # (an engine that overlaps its host work), not a sign of a wrong setup.
        margin = 0.02 * (hi_b - lo_b)
        at_bound = bool((value <= lo_b + margin and name != "step_overhead_s") or value >= hi_b - margin)
        low = high = None
        if draws is not None:
            low, high = (float(q) * _UNIT[name] for q in np.percentile(draws[:, k], [2.5, 97.5]))
        se = None if errors is None else float(errors[k]) * _UNIT[name]
        scale = max(abs(value), 1e-3) if name == "step_overhead_s" else abs(value)
        determined = se is not None and se <= WEAK_SPREAD * scale and not at_bound
        values.append(FittedValue(name=name, value=value, std_error=se, low=low, high=high, lower_bound=lo_b,
                                  upper_bound=hi_b, at_bound=at_bound, determined=determined))
    weak = len(replays) < 2 or not all(v.determined for v in values)
    if len(replays) == 1:
        notes.append("one result file: the fit is weakly determined (nothing to cross-check it with); "
                     "benchmark several concurrencies or lengths")
    for v in values:
        if v.at_bound:
            notes.append(f"{v.name} stopped at or near its bound ({v.value:.4g}, bounds {v.lower_bound:g}-"
                         f"{v.upper_bound:g}): the setup may not be the one modelled (GPU, precision, engine "
                         "arguments)")

    held: dict[int, dict[str, float]] = {}
    if leave_one_out and len(replays) >= 3:
        for i in everything:
            others = [j for j in everything if j != i]
            sub = problem.solve(x, others)
            held[i] = _errors(problem.predictions(sub.x)[i], replays[i].measured)

    files = []
    for i, rep in enumerate(replays):
        files.append(FileFit(
            source=rep.source, traffic=rep.traffic, requests_replayed=len(rep.prompt_tokens),
            lengths_source=rep.lengths_source, lengths_estimated=rep.lengths_estimated,
            measured_ms=_ms(rep.measured), before_ms=_ms({m: before[i][m] for m in rep.measured if m in before[i]}),
            after_ms=_ms({m: after[i][m] for m in rep.measured if m in after[i]}),
            before_error=_errors(before[i], rep.measured), after_error=_errors(after[i], rep.measured),
            held_out_error=held.get(i), notes=list(rep.notes), fitted_metrics=list(rep.fit_metrics),
            resampled_requests=i in requests,
        ))

    def used(errors: dict[str, float] | None, f: FileFit) -> list[float]:
        return [e for m, e in (errors or {}).items() if m in f.fitted_metrics]

    all_before = [e for f in files for e in used(f.before_error, f)]
    all_after = [e for f in files for e in used(f.after_error, f)]
    all_held = [e for f in files for e in used(f.held_out_error, f)]
    return FitOutcome(
        corrections=fitted, values=values, files=files, rms_error_before=_rms(all_before),
        rms_error_after=_rms(all_after), rms_error_held_out=_rms(all_held) if all_held else None,
        weakly_determined=weak,
        uncertainty_method=_method(draws is not None, len(replays), len(requests)),
        bootstrap_samples=0 if draws is None else len(draws), solver_evaluations=problem.evaluations,
        notes=notes,
    )
