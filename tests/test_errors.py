"""planner.errors message helpers, planner.units, and the shared plot-path check."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from planner.inputs.catalog import get_gpu, load_gpu_yaml
from planner.errors import PlannerError, did_you_mean, validation_line
from planner.inputs.models import get_model
from planner.report import files
from planner.report.compare_plot import check_plot_path as compare_check
from planner.report.traffic_plot import check_plot_path as traffic_check
from planner.units import GB, GIB, MIB, format_usd


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inner: _Inner
    name: str


def _error(data: dict) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        _Outer.model_validate(data)
    return info.value


def test_validation_line_names_the_field():
    assert validation_line(_error({"inner": {"rate": "x"}, "name": "a"})).startswith("inner.rate: ")
    # an unknown key is reported before the missing field it hides
    err = _error({"inner": {"rat": 1.0}, "name": "a"})
    assert validation_line(err) == "inner.rat: Extra inputs are not permitted"


def test_validation_line_default_location():
    class Root(BaseModel):
        x: int

        def model_post_init(self, _: object) -> None:
            raise ValueError("bad")

    with pytest.raises(ValidationError) as info:
        Root(x=1)
    assert validation_line(info.value, "config") == "config: Value error, bad"


def test_did_you_mean():
    assert did_you_mean("h100-sx", ["h100-sxm", "h200", "l4"], n=4, cutoff=0.4) == "did you mean h100-sxm, h200?"
    assert did_you_mean("rate_per_sec", ["rate_per_s", "cv"], quote=True) == "did you mean 'rate_per_s'?"
    assert did_you_mean("zzz", ["rate_per_s"]) == ""


def test_callers_keep_their_messages(tmp_path):
    with pytest.raises(PlannerError, match=r"unknown GPU 'h100': did you mean h200, h100-sxm, .*\? see `planner catalog`"):
        get_gpu("h100")
    with pytest.raises(PlannerError, match=r"unknown model 'llama-3.1-8': did you mean llama-3.1-8b"):
        get_model("llama-3.1-8")
    path = tmp_path / "g.yaml"
    path.write_text("id: x\nnme: X\n")
    with pytest.raises(PlannerError, match=r"unknown field 'nme' \(did you mean name\?\): fix the key"):
        load_gpu_yaml(path)


def test_units_and_money():
    assert (GB, GIB, MIB) == (1e9, 2**30, 2**20)
    assert format_usd(1234.5) == "$1,234.50" and format_usd(None) == "n/a"


def test_one_plot_path_check(tmp_path):
    ok = tmp_path / "a.png"
    assert files.check_plot_path(ok) == compare_check(ok) == traffic_check(ok) == ok
    with pytest.raises(PlannerError, match=r"--plot .*: give a file name ending in \.png"):
        files.check_plot_path(tmp_path / "a.pdf")
    # each caller keeps its own example name when given a folder
    with pytest.raises(PlannerError, match=r"compare\.png"):
        compare_check(tmp_path)
    with pytest.raises(PlannerError, match=r"traffic\.png"):
        traffic_check(tmp_path)
