"""Byte units, one definition for the whole package: GB (1e9 B) for the figures reports print,
GiB/MiB (2**30, 2**20 B) where GPU makers and vLLM count in binary units."""

GB = 1e9
GIB = 2**30
MIB = 2**20


def format_usd(x: float | None) -> str:
    """US dollars as reports print them: '$1,234.56', 'n/a' for a figure that does not exist."""
    return "n/a" if x is None else f"${x:,.2f}"
