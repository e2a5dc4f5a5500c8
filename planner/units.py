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
MONTHS_PER_YEAR = 12  # a year of the finance summary: 12 months of HOURS_PER_MONTH
# The one wording of the month assumption (cost breakdowns, assumptions lists, the plan report).
MONTH_ASSUMPTION = (f"monthly cost = horizon cost scaled to a {HOURS_PER_MONTH:g}-hour month, "
                    "assuming the simulated traffic repeats all month")


def per_month(usd: float, horizon_s: float) -> float:
    """A cost over `horizon_s` seconds scaled to a month (the horizon repeated back to back)."""
    if horizon_s <= 0:
        raise PlannerError(f"horizon must be > 0 seconds to scale a cost to a month, got {horizon_s}")
    return usd * SECONDS_PER_MONTH / horizon_s


def format_duration(seconds: float | None) -> str:
    """A duration in the unit its size calls for: '850.0 ms', '12.3 s', '45.3 min', '2.5 h'."""
    if seconds is None:
        return "n/a"
    if abs(seconds) < 1:
        return f"{seconds * 1e3:,.1f} ms"
    if abs(seconds) < 60:
        return f"{seconds:,.2f} s"
    if abs(seconds) < 3600:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.2f} h"


def round_floats(value: object, digits: int = 7) -> object:
    """`value` (a JSON-ready structure) with every float rounded to `digits` significant digits, so
    JSON output carries no binary noise (0.30000000000000004) or false precision."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if value == value and value not in (float("inf"), float("-inf")) else value
    if isinstance(value, dict):
        return {k: round_floats(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [round_floats(v, digits) for v in value]
    return value
