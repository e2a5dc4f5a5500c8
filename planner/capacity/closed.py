"""Capacity in users: the most closed-loop users one replica serves under the SLO.

For a profile with `arrivals: {process: closed}` the load is a number of users, not a rate: each
user sends its next request when the previous one completes (plus think time), so a replica's
capacity is the largest user count whose requests still meet the SLO at the profile's attainment.
The probe plays a closed loop of `users` on one replica (planner.sim via the task's `simulate`)
with a fixed sample of the profile's sizes and its think time; the search doubles from a hint,
then bisects on whole users. Same cache and process pool as the rate capacities
(planner.capacity.tasks).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.capacity.buckets import WARMUP_FRACTION
from planner.capacity.search import CandidateCheck, CapacityResult
from planner.traffic.closed_loop import ClosedLoop, SizeList, closed_arrivals, mean_think_seconds
from planner.inputs.profile import Profile

MAX_USERS = 1 << 16  # the search stops doubling here (a replica past this is never the bottleneck)
PROBE_REQUESTS_PER_USER = 4  # a probe sends at least this many requests per user


@dataclass
class UsersBisection:
    """What the search found: the most passing users and the evaluations it took."""

    users: int
    attainment: float
    evaluations: list[tuple[int, float]] = field(default_factory=list)  # (users, attainment)


def max_users_under_slo(
    attainment_at: Callable[[int], float],
    target: float,
    users_hint: int,
    *,
    max_evaluations: int = 22,
    rel_tol: float = 0.02,
    max_users: int = MAX_USERS,
) -> UsersBisection:
    """Most users whose attainment meets `target`, assuming attainment falls as users grow.

    Doubling (or quartering) from `users_hint` brackets the answer, then a bisection on whole
    users narrows it to one user or `rel_tol`. Returns 0 when even one user misses the SLO.
    """
    evals: list[tuple[int, float]] = []

    def check(users: int) -> bool:
        att = float(attainment_at(users))
        evals.append((users, att))
        return att >= target

    lo, hi, lo_att = 0, math.inf, 0.0
    users = min(max(1, int(users_hint)), max_users)
    while len(evals) < max_evaluations:
        if check(users):
            lo, lo_att = users, evals[-1][1]
            if math.isinf(hi):
                if users >= max_users:
                    break
                users = min(users * 2, max_users)
                continue
        else:
            hi = users
            if lo == 0:
                if users <= 1:
                    break
                users = max(1, users // 4)
                continue
        if hi - lo <= max(1.0, lo * rel_tol):
            break
        users = (lo + int(hi)) // 2
    return UsersBisection(users=lo, attainment=lo_att, evaluations=evals)


def probe_loop(profile: Profile, prompt: tuple[int, ...], output: tuple[int, ...], users: int, num_requests: int,
               seed: int) -> Any:
    """The closed loop one probe plays: `users` users with the profile's think time sending the
    sample's sizes in order, max(num_requests, 4 per user) requests in all."""
    return ClosedLoop(
        users=users,
        think=closed_arrivals(profile).think_time_seconds,
        sizes=SizeList(prompt, output),
        max_requests=max(num_requests, PROBE_REQUESTS_PER_USER * users),
        seed=seed,
        source=f"capacity probe, {users} users",
    )


def _attainment_fn(profile: Profile, task: Any, simulate: Callable[..., Any]) -> Callable[[int], float]:
    """users -> SLO attainment of one replica serving a closed loop of that many users.

    Scored: requests sent after the first wave and the warm-up share, and before the last
    `users` (the run's end drains with fewer users than planned). Records, per user count, the
    request rate and the mean requests inside the replica (Little's law) for the result.
    """
    from planner.sim.metrics import request_slo  # noqa: PLC0415  (the one SLO rule)

    think_s = mean_think_seconds(closed_arrivals(profile).think_time_seconds)

    def attainment_at(users: int) -> float:
        loop = probe_loop(profile, task.prompt_tokens, task.output_tokens, users, task.num_requests, task.seed)
        out = simulate(profile, task.gpu_id, task.tensor_parallel_size, loop)
        rec = out.records
        n = len(rec)
        lo, hi = max(users, int(n * WARMUP_FRACTION)), max(n - users, 0)
        if hi <= lo:
            lo, hi = 0, n
        ok = request_slo(
            rec.arrival_at, rec.first_token_at, rec.finished_at, rec.output_tokens,
            profile.slo.ttft_seconds, profile.slo.tpot_seconds,
        )[2][lo:hi]
        e2e = np.asarray(rec.finished_at[lo:hi] - rec.arrival_at[lo:hi], dtype=float)
        e2e = e2e[np.isfinite(e2e)]
        if len(e2e):
            rate = users / (float(e2e.mean()) + think_s)  # Little's law for a closed system
            stats[users] = (rate, rate * float(e2e.mean()))
        return float(ok.mean()) if len(ok) else 0.0

    stats: dict[int, tuple[float, float]] = {}
    attainment_at.stats = stats  # type: ignore[attr-defined]
    return attainment_at


def users_hint(check: CandidateCheck | None, mean_output: float, think_s: float, rate_hint: float) -> int:
    """A starting user count: the rate hint times an unloaded request's time plus think time."""
    if check is None or not check.unloaded_tpot_s:
        return 8
    latency = (check.unloaded_ttft_s or 0.0) + mean_output * check.unloaded_tpot_s
    return max(1, round(rate_hint * (latency + think_s)))


def run_closed_task(task: Any, simulate: Callable[..., Any], check: CandidateCheck | None, profile: Profile,
                    rate_hint: float) -> CapacityResult:
    """Answer one closed-loop capacity question (a CapacityTask with closed=True) by bisection on users."""
    started = time.perf_counter()
    fn = _attainment_fn(profile, task, simulate)
    think_s = mean_think_seconds(closed_arrivals(profile).think_time_seconds)
    hint = users_hint(check, float(np.mean(task.output_tokens)), think_s, rate_hint)
    found = max_users_under_slo(fn, profile.slo.attainment, hint)
    rate, in_flight = getattr(fn, "stats", {}).get(found.users, (0.0, None))
    return CapacityResult(
        gpu_id=task.gpu_id,
        tensor_parallel_size=task.tensor_parallel_size,
        bucket=task.bucket,
        max_rate_per_s=rate if found.users > 0 else 0.0,
        attainment_at_max=found.attainment if found.users > 0 else None,
        source="simulated",
        evaluations=len(found.evaluations),
        num_requests=max(task.num_requests, PROBE_REQUESTS_PER_USER * max(found.users, 1)),
        burstiness_cv=None,
        seconds=time.perf_counter() - started,
        cache_key=task.key,
        in_flight_at_max=in_flight,
        max_users=found.users,
    )
