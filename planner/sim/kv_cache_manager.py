"""Tokens → KV blocks for each request (vLLM v1's KVCacheManager, without prefix caching)."""

from __future__ import annotations

from planner.sim.block_pool import BlockPool
from planner.sim.request import Request


class KVCacheManager:
    """Turns a request's token count into blocks of `block_size` tokens taken from the pool."""

    __slots__ = ("block_pool", "block_size")

    def __init__(self, block_pool: BlockPool, block_size: int):
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}")
        self.block_pool = block_pool
        self.block_size = int(block_size)

    def allocate_slots(self, request: Request, num_new_tokens: int) -> int | None:
        """Make room for `num_new_tokens` more computed tokens of `request`.

        Args:
            request: the request; its `num_computed_tokens` tokens already have slots.
            num_new_tokens: tokens this step will compute for it.

        Returns:
            The number of blocks newly taken (0 if its last block had room), or None when the pool
            cannot supply them: the caller decides whom to preempt, as in vLLM.
        """
        needed = -(-(request.num_computed_tokens + num_new_tokens) // self.block_size) - request.num_blocks
        if needed <= 0:
            return 0
        if not self.block_pool.take(needed):
            return None
        request.num_blocks += needed
        return needed

    def free(self, request: Request) -> None:
        """Release all of a request's blocks (finish or preemption)."""
        if request.num_blocks:
            self.block_pool.free(request.num_blocks)
            request.num_blocks = 0
