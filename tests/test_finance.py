"""The finance summary: a month and a year, the hosted API, the break-even search, plain words."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import billing
from planner.optimize.finance import compare_hosted, find_break_even, summarize
from planner.report.finance_text import relative_cost


def _finance(cost_per_month=1000.0, horizon_s=3600.0, n=3600, tin=1_000_000, tout=200_000):
    return summarize(cost_per_month, horizon_s, n, tin, tout)


def test_month_and_year_from_the_horizon():
    f = _finance()
    per_month = billing.per_month(1.0, 3600.0)  # 730
    assert f.requests_per_month == pytest.approx(3600 * per_month)
    assert f.input_tokens_per_month == pytest.approx(1e6 * per_month)
    assert f.cost_per_year_usd == pytest.approx(12_000.0)
    assert f.usd_per_million_tokens == pytest.approx(1000.0 / (1.2e6 * per_month) * 1e6)


def _replicas_cost(scale: float, floor: float = 1000.0, per_replica_scale: float = 3.0) -> float:
    """A fleet with one replica always up, one more per 3x of the profile's traffic."""
    return floor * max(1, math.ceil(scale / per_replica_scale))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(hosted_at_one=st.floats(50.0, 20_000.0))
def test_break_even_is_where_the_sign_flips(hosted_at_one):
    scale, points, note = find_break_even(_replicas_cost, lambda s: hosted_at_one * s)
    if scale is None:
        assert "stays" in note or "no crossing" in note
        return
    # Self-hosting is no dearer at the break-even, and dearer just below it (within the bisection's step).
    assert _replicas_cost(scale) <= hosted_at_one * scale + 1e-9
    below = scale / 2 ** (1 / 2**7)
    assert _replicas_cost(below) > hosted_at_one * below - 1e-9 or scale <= 1 / 2**10
    assert all(s > 0 for s, _, _ in points)


def test_hosted_comparison_words_and_break_even():
    f = _finance(cost_per_month=1000.0)
    hosted_at_one = (f.input_tokens_per_month * 1.0 + f.output_tokens_per_month * 4.0) / 1e6  # $1,314
    h = compare_hosted(f, "Some API", 1.0, 4.0, _replicas_cost, mean_rate_per_s=2.0)
    assert h.cost_per_month_usd == pytest.approx(hosted_at_one)
    assert h.cheaper == "self-hosted" and h.self_hosted_vs_hosted_pct == pytest.approx((1000 / hosted_at_one - 1) * 100)
    # One replica ($1,000) up to 3x: the hosted bill reaches it at 1000 / 1314 of this traffic.
    assert h.break_even_scale == pytest.approx(1000.0 / hosted_at_one, rel=0.01)
    assert h.break_even_requests_per_s == pytest.approx(2.0 * h.break_even_scale)
    cheap = compare_hosted(f, "Cheap API", 0.1, 0.4, _replicas_cost, mean_rate_per_s=2.0)  # $131/month
    assert cheap.cheaper == "hosted" and cheap.break_even_scale is None and "stays dearer" in cheap.break_even_note
    assert "tokenizer" in h.tokenizer_note


def test_no_plan_at_scale_is_said():
    scale, _, note = find_break_even(lambda s: None if s > 3 else 1000.0, lambda s: 10.0 * s)
    assert scale is None and "no plan" in note


def test_relative_cost_in_plain_words():
    assert relative_cost(182.8, 100.0) == "costs 82.8% more"
    assert relative_cost(76.8, 100.0) == "costs 23.2% less"
    assert relative_cost(100.0, 100.0) == "costs the same"
