"""Closed-loop traffic: N users, each sending its next request when the previous one completes.

This is how `vllm bench serve --max-concurrency N`, genai-perf's `--concurrency N` and chat users
behave: the arrival times depend on the engine's latencies, so they cannot be drawn up front
like an open-loop `Workload`. What can be drawn up front, and is drawn here (pure numpy, seeded),
is everything the users decide on their own: the sizes of the k-th request sent and the think
time a user waits after the k-th request completes. The simulator (planner.sim.closed_loop) plays
the loop; this module knows nothing about SimPy.

Semantics, as in vLLM's benchmark with --max-concurrency (an asyncio semaphore of N slots over
one list of requests): the first wave of N requests is sent at t = 0, and each completion
releases the next request of the list, after the user's think time. The k-th request sent takes
the k-th sizes of the list. Users stop sending at the horizon (a request is sent only at
t < horizon_s) or once `max_requests` requests have been sent, whichever comes first; requests
in flight then are served to the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from planner.errors import PlannerError
from planner.inputs.profile import (
    ClosedArrivals,
    ExponentialThink,
    FixedSizes,
    FixedThink,
    LognormalThink,
    Profile,
    UniformSizes,
    UniformThink,
)
from planner.traffic.generation import generate_workload, resolve_traffic
from planner.traffic.synthetic import cap_sizes, request_sizes
from planner.traffic.workload import TokenStats, _token_stats

# Requests drawn per chunk: the k-th request's sizes do not depend on how many are drawn in all.
DRAW_CHUNK = 4096


def think_seconds(spec: Any, n: int, rng: np.random.Generator) -> np.ndarray:
    """n think times (seconds, >= 0) from a profile's think_time_seconds (a number or a distribution)."""
    if isinstance(spec, (int, float)):
        return np.full(n, float(spec))
    if isinstance(spec, FixedThink):
        return np.full(n, float(spec.seconds))
    if isinstance(spec, UniformThink):
        lo, hi = spec.seconds
        return rng.uniform(lo, hi, n) if hi > lo else np.full(n, float(lo))
    if isinstance(spec, ExponentialThink):
        return rng.exponential(spec.mean_seconds, n)
    if isinstance(spec, LognormalThink):
        mu, sigma = spec.mu_sigma()
        values = np.exp(mu + sigma * rng.standard_normal(n))
        return np.minimum(values, spec.max_seconds) if spec.max_seconds is not None else values
    raise PlannerError(f"unsupported think-time distribution {type(spec).__name__}")


def mean_think_seconds(spec: Any) -> float:
    """The think time's mean, seconds (for `planner traffic` and Little's-law estimates)."""
    if isinstance(spec, (int, float)):
        return float(spec)
    if isinstance(spec, FixedThink):
        return float(spec.seconds)
    if isinstance(spec, UniformThink):
        return (spec.seconds[0] + spec.seconds[1]) / 2.0
    if isinstance(spec, ExponentialThink):
        return float(spec.mean_seconds)
    if isinstance(spec, LognormalThink):
        if spec.max_seconds is not None:  # a clipped lognormal: estimate from a fixed-seed sample
            return float(think_seconds(spec, 100_000, np.random.default_rng(0)).mean())
        mu, sigma = spec.mu_sigma()
        return float(np.exp(mu + sigma * sigma / 2.0))
    raise PlannerError(f"unsupported think-time distribution {type(spec).__name__}")


@dataclass(frozen=True)
class SizeList:
    """A fixed request list as a size spec: the k-th request sent takes entry k mod its length
    (capacity probes replay a sample of the profile's sizes in a closed loop)."""

    prompt_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.prompt_tokens or len(self.prompt_tokens) != len(self.output_tokens):
            raise PlannerError("a size list needs as many prompt as output lengths, at least one")

    @property
    def distribution(self) -> str:
        return "list"

    def take(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Entries start .. start + n - 1, cycling."""
        idx = (start + np.arange(n)) % len(self.prompt_tokens)
        return (np.asarray(self.prompt_tokens, dtype=np.int64)[idx],
                np.asarray(self.output_tokens, dtype=np.int64)[idx])


@dataclass(frozen=True, eq=False)
class ClosedLoop:
    """A closed loop of `users` clients: what the simulator needs to play it.

    Attributes:
        users: concurrent clients; the first wave of `users` requests is sent at t = 0.
        think: think time after each completion: seconds (a number) or a profile distribution.
        sizes: a synthetic size spec (planner.profile FixedSizes, UniformSizes, ...).
        horizon_s: users send no request at or after this time (None: only max_requests bounds).
        max_requests: requests sent in all (None: only the horizon bounds).
        seed: seeds the size and think-time streams (two streams spawned from it).
        max_model_len: cap for prompt + output (output kept, prompt truncated), None = no cap.
        source: a human description.
    """

    users: int
    think: Any = 0.0
    sizes: Any = None
    horizon_s: float | None = None
    max_requests: int | None = None
    seed: int = 0
    max_model_len: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if int(self.users) < 1:
            raise PlannerError(f"a closed loop needs users >= 1 (got {self.users})")
        if self.horizon_s is None and self.max_requests is None:
            raise PlannerError("a closed loop needs a bound: traffic.horizon_seconds or traffic.requests (or both)")
        if self.horizon_s is not None and not self.horizon_s > 0:
            raise PlannerError(f"traffic.horizon_seconds must be > 0 (got {self.horizon_s})")
        if self.max_requests is not None and int(self.max_requests) < 1:
            raise PlannerError(f"traffic.requests must be >= 1 (got {self.max_requests})")
        if self.sizes is None:
            raise PlannerError("a closed loop needs traffic.sizes (the request sizes the users send)")
        if isinstance(self.think, (int, float)) and not float(self.think) >= 0:
            raise PlannerError(f"traffic.arrivals.think_time_seconds must be >= 0 (got {self.think})")

    def draws(self) -> ClosedLoopDraws:
        """A fresh draw of the request list (the same for the same seed)."""
        return ClosedLoopDraws(self)

    @property
    def mean_think_s(self) -> float:
        return mean_think_seconds(self.think)

    def sizes_sample(self, n: int = DRAW_CHUNK) -> tuple[np.ndarray, np.ndarray]:
        """(prompt_tokens, output_tokens) of the first n requests the users will send."""
        draws = self.draws()
        draws.ensure(n)
        return np.asarray(draws.prompt_tokens[:n], dtype=np.int64), np.asarray(draws.output_tokens[:n], dtype=np.int64)

    def with_users(self, users: int) -> ClosedLoop:
        """The same loop with another number of users (the same request list)."""
        return replace(self, users=int(users), source=self.source.replace(f"{self.users} users", f"{users} users", 1))

    def scale_rate(self, factor: float) -> ClosedLoop:
        """More or less load, the closed-loop way: users × factor (rounded, at least 1).

        Named like `Workload.scale_rate` so load sweeps (planner compare) take either."""
        if not factor > 0:
            raise PlannerError(f"load scale factor must be > 0 (got {factor})")
        return self.with_users(max(1, round(self.users * factor)))


@dataclass(eq=False)
class ClosedLoopDraws:
    """The request list of a closed loop, drawn chunk by chunk as the simulation consumes it.

    `prompt_tokens[k]`, `output_tokens[k]`: sizes of the k-th request sent; `think_s[k]`: the think
    time its user waits after it completes. Plain lists (the simulator reads them item by item).
    """

    loop: ClosedLoop
    prompt_tokens: list[int] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)
    think_s: list[float] = field(default_factory=list)
    capped: bytearray = field(default_factory=bytearray)  # 1 where max_model_len cut the sizes

    def __post_init__(self) -> None:
        sizes_ss, think_ss = np.random.SeedSequence(int(self.loop.seed)).spawn(2)
        self._rng_sizes = np.random.default_rng(sizes_ss)
        self._rng_think = np.random.default_rng(think_ss)

    def ensure(self, n: int) -> None:
        """Draw until at least n requests are listed."""
        loop = self.loop
        while len(self.prompt_tokens) < n:
            if isinstance(loop.sizes, SizeList):
                prompt, output = loop.sizes.take(len(self.prompt_tokens), DRAW_CHUNK)
            else:
                prompt, output = request_sizes(loop.sizes, DRAW_CHUNK, self._rng_sizes)
            capped = np.zeros(DRAW_CHUNK, dtype=np.uint8)
            if loop.max_model_len is not None:
                p, o, _ = cap_sizes(prompt, output, loop.max_model_len)
                capped = ((p != prompt) | (o != output)).astype(np.uint8)
                prompt, output = p, o
            self.capped.extend(capped.tobytes())
            self.prompt_tokens.extend(np.asarray(prompt, dtype=np.int64).tolist())
            self.output_tokens.extend(np.asarray(output, dtype=np.int64).tolist())
            self.think_s.extend(think_seconds(loop.think, DRAW_CHUNK, self._rng_think).tolist())

    def num_capped_among(self, n: int) -> int:
        """How many of the first n requests had their sizes capped to max_model_len."""
        return sum(self.capped[:n])


def fixed_closed_loop(
    users: int,
    prompt_tokens: int,
    output_tokens: int,
    requests_per_user: int = 10,
    think_time_s: float = 0.0,
    output_spread: float = 0.0,
    seed: int = 0,
) -> ClosedLoop:
    """A benchmark-style loop: fixed ISL/OSL, `users` clients, users × requests_per_user requests
    (the first wave included), as `vllm bench serve --max-concurrency` with the random dataset at
    fixed lengths and --ignore-eos.

    output_spread: 0 gives every request exactly `output_tokens`. With exact lengths the simulated
    users phase-lock: the requests prefilled in one step all finish in one step and come back
    together, so every later prompt queues behind a whole group's prefill. A spread s > 0 draws
    output lengths uniformly from [OSL (1 - s), OSL (1 + s)] (the mean stays OSL, seeded by
    `seed`), which lets the users drift apart as real clients do.
    """
    if prompt_tokens < 1 or output_tokens < 1:
        raise PlannerError(f"prompt and output tokens must be >= 1 (got {prompt_tokens}, {output_tokens})")
    if requests_per_user < 1:
        raise PlannerError(f"requests_per_user must be >= 1 (got {requests_per_user})")
    if not 0.0 <= output_spread < 1.0:
        raise PlannerError(f"output_spread must be in [0, 1) (got {output_spread})")
    lo, hi = round(output_tokens * (1.0 - output_spread)), round(output_tokens * (1.0 + output_spread))
    sizes: Any
    if hi > lo:
        sizes = UniformSizes(distribution="uniform", prompt_tokens=[int(prompt_tokens), int(prompt_tokens)],
                             output_tokens=[max(1, lo), hi])
    else:
        sizes = FixedSizes(distribution="fixed", prompt_tokens=int(prompt_tokens), output_tokens=int(output_tokens))
    spread = f" ± {output_spread:.0%}" if hi > lo else ""
    return ClosedLoop(
        users=int(users),
        think=float(think_time_s),
        sizes=sizes,
        max_requests=int(users) * int(requests_per_user),
        seed=int(seed),
        source=f"closed loop of {users} users, {prompt_tokens}/{output_tokens}{spread} tokens, "
        f"{requests_per_user} requests each, think {think_time_s:g} s",
    )



def _describe_think(think: Any) -> str:
    if isinstance(think, (int, float)):
        return f"{float(think):g} s"
    fields = ", ".join(f"{k}={v}" for k, v in think.model_dump(exclude={"distribution"}).items() if v is not None)
    return f"{think.distribution}({fields})"


def closed_arrivals(profile: Profile) -> ClosedArrivals:
    """The profile's `arrivals: {process: closed}` section (refused for open-loop traffic)."""
    arrivals = profile.traffic.arrivals
    if not isinstance(arrivals, ClosedArrivals):
        raise PlannerError(f"traffic.arrivals.process is {arrivals.process!r}, not 'closed'")
    return arrivals


def closed_loop(source: Any, seed: int | None = None, max_model_len: int | None = None) -> ClosedLoop:
    """The closed loop a profile's (or a TrafficSection's) `arrivals: {process: closed}` describes.

    Args:
        source: a Profile (its serving.max_model_len is the default cap) or a TrafficSection.
        seed: random seed; None = traffic.seed.
        max_model_len: cap for prompt + output tokens; None = the profile's, or no cap.
    """
    traffic, seed, max_model_len = resolve_traffic(source, seed, max_model_len)
    arrivals = traffic.arrivals
    if not isinstance(arrivals, ClosedArrivals):
        raise PlannerError(f"traffic.arrivals.process is {arrivals.process!r}, not 'closed'")
    bounds = [f"{traffic.horizon_seconds:g} s" if traffic.horizon_seconds is not None else "",
              f"{traffic.requests} requests" if traffic.requests is not None else ""]
    return ClosedLoop(
        users=arrivals.users,
        think=arrivals.think_time_seconds,
        sizes=traffic.sizes,
        horizon_s=traffic.horizon_seconds,
        max_requests=traffic.requests,
        seed=seed,
        max_model_len=max_model_len,
        source=f"closed loop of {arrivals.users} users, think {_describe_think(arrivals.think_time_seconds)}; "
        f"{traffic.sizes.distribution} sizes; until {' or '.join(b for b in bounds if b)}; seed {seed}",  # type: ignore[union-attr]
    )


class ClosedLoopStats(BaseModel):
    """What `planner traffic` can say about a closed loop without an engine."""

    process: str = Field("closed", description="Always 'closed' (open-loop traffic prints TrafficStats).")
    source: str
    users: int = Field(description="Concurrent users; the first wave of this many requests is sent at t = 0.")
    think_time: str = Field(description="The think time after each completion, as the profile gives it.")
    mean_think_time_seconds: float
    horizon_seconds: float | None = Field(description="No request is sent at or after it (None: requests bound only).")
    requests: int | None = Field(description="Requests sent in all (None: the horizon bounds).")
    arrival_rate: str = Field(description="Why no arrival rate is printed: it depends on the engine.")
    sample_requests: int = Field(description="Requests in the size sample below (the first the users send).")
    prompt_tokens: TokenStats
    output_tokens: TokenStats
    num_capped: int = Field(0, description="Requests of the sample whose sizes were capped to max_model_len.")
    profile: str | None = None
    seed: int


def closed_loop_stats(loop: ClosedLoop, profile: str | None = None) -> ClosedLoopStats:
    """Users, think time, bounds and the sizes of the first requests the users will send."""
    n = DRAW_CHUNK if loop.max_requests is None else min(DRAW_CHUNK, loop.max_requests)
    draws = loop.draws()
    draws.ensure(n)
    return ClosedLoopStats(
        source=loop.source,
        users=loop.users,
        think_time=_describe_think(loop.think),
        mean_think_time_seconds=loop.mean_think_s,
        horizon_seconds=loop.horizon_s,
        requests=loop.max_requests,
        arrival_rate="depends on the engine: users / (mean latency + mean think time) by Little's law; "
        "`planner simulate` measures it",
        sample_requests=n,
        prompt_tokens=_token_stats(np.asarray(draws.prompt_tokens[:n])),
        output_tokens=_token_stats(np.asarray(draws.output_tokens[:n])),
        num_capped=draws.num_capped_among(n),
        profile=profile,
        seed=loop.seed,
    )


def traffic_for_simulation(profile: Profile, seed: int | None = None, max_model_len: int | None = None) -> Any:
    """What planner.sim.simulate takes for a profile's traffic: its drawn Workload, or its ClosedLoop."""
    if profile.traffic.closed_loop:
        return closed_loop(profile, seed, max_model_len)
    return generate_workload(profile, seed=seed, max_model_len=max_model_len)
