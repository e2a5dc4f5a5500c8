"""One request's state inside a replica engine (vLLM v1's `Request`, reduced to what timing needs).

Token accounting follows vLLM v1: `num_tokens` = prompt + output tokens produced so far, and each
engine step closes part of the gap `num_tokens - num_computed_tokens`. A step that closes the gap
samples one new output token (a partial prefill chunk samples nothing).
"""

from __future__ import annotations

import enum


class RequestStatus(enum.IntEnum):
    """Lifecycle of a request. NOTE: the order is not relied upon."""

    WAITING = 0  # in a replica's waiting queue, never scheduled
    RUNNING = 1  # in the running set (prefilling or decoding)
    PREEMPTED = 2  # blocks freed, back at the front of the waiting queue, will recompute
    FINISHED = 3  # all output tokens produced
    REJECTED = 4  # never admitted; rejected_reason says why


class Request:
    """A request in flight. Timestamps are simulated seconds; NaN until they happen.

    Kept as a slotted plain class (not pydantic): the simulator creates one per request in the
    hot path, and its times are copied into numpy record arrays when it leaves.
    """

    __slots__ = (
        "req_id",
        "arrival_at",
        "num_prompt_tokens",
        "max_output_tokens",
        "num_output_tokens",
        "num_computed_tokens",
        "num_blocks",
        "status",
        "admitted_at",
        "first_token_at",
        "finished_at",
        "num_preemptions",
        "replica_id",
        "queued_plan",
    )

    def __init__(self, req_id: int, arrival_at: float, num_prompt_tokens: int, max_output_tokens: int):
        self.req_id = req_id  # index into the workload arrays and the records
        self.arrival_at = arrival_at
        self.num_prompt_tokens = num_prompt_tokens
        self.max_output_tokens = max_output_tokens  # the workload's output length: generation stops there
        self.num_output_tokens = 0
        self.num_computed_tokens = 0  # tokens whose KV is in the cache
        self.num_blocks = 0  # KV blocks held
        self.status = RequestStatus.WAITING
        self.admitted_at = float("nan")  # start of the first step that scheduled it
        self.first_token_at = float("nan")  # end of the step that completed its prefill
        self.finished_at = float("nan")
        self.num_preemptions = 0
        self.replica_id = -1
        # step plans its engine had made when it received it (async scheduling's visibility)
        self.queued_plan = 0

    @property
    def num_tokens(self) -> int:
        """Prompt plus output tokens so far (vLLM's num_tokens)."""
        return self.num_prompt_tokens + self.num_output_tokens

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return (
            f"Request({self.req_id}, {self.status.name}, prompt={self.num_prompt_tokens}, "
            f"out={self.num_output_tokens}/{self.max_output_tokens}, computed={self.num_computed_tokens}, "
            f"blocks={self.num_blocks})"
        )
