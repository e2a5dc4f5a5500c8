"""Tokens → KV blocks for each request (vLLM v1's KVCacheManager, without prefix caching).

The manager is the only writer of `Request.num_blocks` and, through the pool, of the free-block
count: the scheduler decides who runs and asks it for blocks, as in vLLM's scheduler → KV cache
manager → block pool split.
"""

from __future__ import annotations

from collections.abc import Sequence

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

    def allocate_bulk(self, num_blocks: int, prefills: Sequence[tuple[Request, int, int]]) -> bool:
        """Take one step's blocks at once (the scheduler's bulk path).

        Args:
            num_blocks: every block the step needs: the lazily tracked decoders' (their
                `num_blocks` is written by `sync_blocks` when they materialize) plus the prefills'.
            prefills: (request, num_new_tokens, blocks) of the step's prefill chunks; each
                request's `num_blocks` grows by its positive `blocks`.
        Returns:
            False (nothing taken) when the pool holds fewer than `num_blocks` free blocks.
        """
        if not self.block_pool.take(num_blocks):
            return False
        for request, _, blocks in prefills:
            if blocks > 0:
                request.num_blocks += blocks
        return True

    def take_decoder_blocks(self, num_blocks: int) -> bool:
        """Take blocks for lazily tracked decoders (a jump over several decode steps)."""
        return self.block_pool.take(num_blocks)

    def sync_blocks(self, request: Request, num_computed_tokens: int) -> None:
        """Write a lazily tracked decoder's block count: the blocks its computed tokens fill."""
        request.num_blocks = -(-num_computed_tokens // self.block_size)
