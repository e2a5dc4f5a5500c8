"""Units, one definition for the whole package: GB (1e9 B) for the figures reports print,
GiB/MiB (2**30, 2**20 B) where GPU makers and vLLM count in binary units; the month that
monthly costs and rates scale to."""

from planner.errors import PlannerError

GB = 1e9
GIB = 2**30
MIB = 2**20


def format_usd(x: float | None) -> str:
    """US dollars as reports print them: '$1,234.56', 'n/a' for a figure that does not exist."""
    return "n/a" if x is None else f"${x:,.2f}"


# NOTE: a month is 730 hours (8,760 h / 12), the convention cloud price lists use for monthly
# figures; the per-month cost assumes the simulated horizon repeats for the whole month.
HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0
# The one wording of the month assumption (cost breakdowns, assumptions lists, the plan report).
MONTH_ASSUMPTION = (f"monthly cost = horizon cost scaled to a {HOURS_PER_MONTH:g}-hour month, "
                    "assuming the simulated traffic repeats all month")


def per_month(usd: float, horizon_s: float) -> float:
    """A cost over `horizon_s` seconds scaled to a month (the horizon repeated back to back)."""
    if horizon_s <= 0:
        raise PlannerError(f"horizon must be > 0 seconds to scale a cost to a month, got {horizon_s}")
    return usd * SECONDS_PER_MONTH / horizon_s
