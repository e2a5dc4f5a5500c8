"""The replica's pool of KV-cache blocks: the one owner of the free-block count.

No prefix caching is modelled, so blocks carry no identity or hash: the pool only counts them,
which keeps allocation O(1) in the simulator's hot path.
"""

from __future__ import annotations


class BlockPool:
    """Free KV blocks of one replica (num_gpu_blocks in vLLM's words)."""

    __slots__ = ("num_gpu_blocks", "num_free_blocks")

    def __init__(self, num_gpu_blocks: int):
        if num_gpu_blocks < 1:
            raise ValueError(f"num_gpu_blocks must be >= 1, got {num_gpu_blocks}")
        self.num_gpu_blocks = int(num_gpu_blocks)
        self.num_free_blocks = int(num_gpu_blocks)

    def take(self, num_blocks: int) -> bool:
        """Take `num_blocks` blocks if that many are free.

        Returns:
            True if taken; False (and nothing taken) on shortage.
        """
        if num_blocks > self.num_free_blocks:
            return False
        self.num_free_blocks -= num_blocks
        return True

    def free(self, num_blocks: int) -> None:
        """Return blocks to the pool."""
        self.num_free_blocks += num_blocks
        assert self.num_free_blocks <= self.num_gpu_blocks, "freed more KV blocks than were taken"

    @property
    def num_used_blocks(self) -> int:
        return self.num_gpu_blocks - self.num_free_blocks

    @property
    def usage(self) -> float:
        """Fraction of blocks in use (vLLM's kv_cache_usage)."""
        return 1.0 - self.num_free_blocks / self.num_gpu_blocks
