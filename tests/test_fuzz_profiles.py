"""Fuzz the shipped profiles: replace one field (or a whole section) with an arbitrary value and run
`planner simulate`. Every run must exit 0, or exit 2 with one stderr line naming the field; never a
traceback. Horizons are capped to 20 s and the drawn numbers skip the middle magnitudes
(1e3..1e12) so that a valid mutant cannot simulate for minutes.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli_cases import assert_clean, leaves, run_cli, schema_class, set_path

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted((ROOT / "traffic_profiles").glob("*.yaml"))
Profile = schema_class("planner.profile.Profile")
HORIZON_S = 20.0


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    data["traffic"]["horizon_seconds"] = HORIZON_S
    arrivals = data["traffic"]["arrivals"]
    if arrivals.get("process") == "trace":
        arrivals["path"] = str((path.parent / arrivals["path"]).resolve())
    return data


BASES = {p.stem: _load(p) for p in PROFILES}
LEAVES = {name: [leaf for leaf in leaves(Profile, data)] for name, data in BASES.items()}

numbers = st.one_of(
    st.integers(-2, 64),
    st.floats(-2, 64, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e-300, 5e-324, 1e13, 1e30, 1e300, 2**63, 10**20, -0.0]),
)
scalars = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=8), st.sampled_from(["", "1e3", "nan", "auto", "trace"]))
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["a", "process", "distribution", "gpu", "value"]), scalars, max_size=2),
)


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_mutated_shipped_profile_is_accepted_or_refused_cleanly(tmp_path_factory: Any, data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(BASES)), label="profile")
    leaf = data.draw(st.sampled_from(LEAVES[name]), label="field")
    value = data.draw(values, label="value")
    profile = copy.deepcopy(BASES[name])
    set_path(profile, leaf.path, value)
    if leaf.path == ("traffic", "horizon_seconds") and isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and value > HORIZON_S:
            profile["traffic"]["horizon_seconds"] = HORIZON_S
    path = tmp_path_factory.mktemp("fuzz") / "p.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    res = run_cli("simulate", "--profile", str(path), "--gpu", "h100-sxm", "--json")
    assert_clean(res)
