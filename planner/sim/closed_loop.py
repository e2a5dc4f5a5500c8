"""Closed-loop users on the fleet: each user sends its next request when its previous one completes.

Covers: `vllm bench serve --max-concurrency N` / genai-perf `--concurrency N` / chat users: a
first wave of N requests at t = 0; every completion (or rejection) schedules that user's next
request after its think time; users stop sending at the horizon or once the request budget is
spent, and what is in flight then is served to the end.

Scenario: `simulate()` builds the Fleet and, for a `ClosedLoop` (planner.traffic.closed_loop), a
`ClosedLoopSource` instead of the replayed arrival chain. The source is a FleetObserver: the
fleet's completion notification (`on_request_finished`) drives it. Sizes and think times come
from the loop's seeded draws (the k-th request sent takes the k-th sizes), so the engine is the
only thing that changes when the same loop runs on another GPU.

Timing rule: a request is sent as an urgent event (like an open-loop arrival), so one sent at
the instant some replica's step ends is seen by that replica's next step. The user whose request
just finished sends its next one from the completion itself, after the finishing replica has
planned its following step: with zero think time it joins one step later, as a real client's
next request reaches the engine after the step that follows the completion has started.
"""

from __future__ import annotations

from collections.abc import Callable

from planner.sim.fleet import Fleet, FleetObserver
from planner.sim.simpy_internals import UrgentTimeout
from planner.sim.replica import Replica
from planner.sim.request import Request
from planner.traffic.closed_loop import ClosedLoop


class ClosedLoopSource(FleetObserver):
    """Plays a ClosedLoop on a fleet: sends requests and reacts to their completion.

    Attributes:
        arrival_at: send time of each request, by req_id (= the order they were sent).
        user_of: req_id -> user (0 .. users-1).
        num_sent: requests sent so far.
    """

    def __init__(self, fleet: Fleet, loop: ClosedLoop, progress: Callable[[float], None] | None = None):
        self.fleet = fleet
        self.loop = loop
        self.draws = loop.draws()
        self.horizon_s = float("inf") if loop.horizon_s is None else float(loop.horizon_s)
        self.max_requests = loop.max_requests if loop.max_requests is not None else 1 << 62
        self.arrival_at: list[float] = []
        self.user_of: list[int] = []
        self.num_sent = 0
        self._users_active = int(loop.users)
        self._progress = progress
        self._progress_next = 0.01
        fleet.observers.append(self)
        fleet.arrivals_open = True  # the Fleet was built with it (else it would have ended at once)

    def start(self) -> None:
        """Schedule the first wave: every user sends one request at t = 0."""
        for user in range(self.loop.users):
            self._send_after(user, 0.0)

    # --- the loop -------------------------------------------------------------------------------
    def _send_after(self, user: int, delay_s: float) -> None:
        fleet = self.fleet
        if self.num_sent >= self.max_requests or fleet.env.now + delay_s >= self.horizon_s:
            self._user_done()
            return
        event = UrgentTimeout(fleet.env, delay_s)
        event.callbacks.append(lambda _event: self._send(user))

    def _send(self, user: int) -> None:
        fleet = self.fleet
        k = self.num_sent
        if k >= self.max_requests:  # the budget ran out while this user was thinking
            self._user_done()
            return
        draws = self.draws
        if k >= len(draws.prompt_tokens):
            draws.ensure(k + 1)
        self.num_sent = k + 1
        now = fleet.env.now
        self.arrival_at.append(now)
        self.user_of.append(user)
        fleet.num_requests = k + 1
        fleet.records.grow(k + 1)
        if not fleet.submit(Request(k, now, draws.prompt_tokens[k], draws.output_tokens[k])):
            self._send_after(user, draws.think_s[k])  # a refused request returns at once

    def on_request_finished(self, fleet: Fleet, worker: Replica, request: Request) -> None:
        k = request.req_id
        self._send_after(self.user_of[k], self.draws.think_s[k])
        if self._progress is not None:
            self._report_progress()

    def _user_done(self) -> None:
        self._users_active -= 1
        if self._users_active == 0:
            # No request will ever be sent again: the run may end once the fleet has resolved all.
            self.fleet.arrivals_open = False
            self.fleet.check_all_resolved()

    def _report_progress(self) -> None:
        fleet = self.fleet
        fraction = max(fleet.num_resolved / self.max_requests, fleet.env.now / self.horizon_s)
        if fraction >= self._progress_next and fraction < 1.0:
            self._progress(fraction)  # type: ignore[misc]  # only called with a progress callback
            self._progress_next = (int(fraction * 100) + 1) / 100.0
