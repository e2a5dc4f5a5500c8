"""GPU catalog: every required card loads, figures carry provenance, errors name the GPU."""

import pytest
import yaml

from planner.inputs.catalog import GIB, get_gpu, list_gpus, load_catalog, load_gpu_yaml
from planner.errors import PlannerError
from planner.resources import data_dir

REQUIRED = [
    "h100-sxm", "h100-pcie", "h100-nvl", "h200", "b200", "a100-80gb-sxm", "a100-80gb-pcie",
    "a100-40gb-sxm", "l40s", "l4", "a10g", "rtx-a6000", "a40", "rtx-4090", "rtx-3090", "rtx-5090", "mi300x",
]
DENSE_FIELDS = ("bf16_flops_per_s", "fp16_flops_per_s", "fp8_flops_per_s", "int8_ops_per_s")


def test_required_gpus_present():
    assert set(REQUIRED) <= set(list_gpus())


@pytest.mark.parametrize("gpu_id", REQUIRED)
def test_provenance(gpu_id):
    g = get_gpu(gpu_id)
    assert g.sources, "every card names its sources"
    # usable memory is at most the marketed binary size, and measured or ruled
    assert g.memory_bytes_usable <= g.memory_gb * GIB
    assert g.memory_usable_note
    for field in DENSE_FIELDS:
        if getattr(g, field) is None:
            assert field in g.notes, f"{gpu_id}.{field} is missing without a note"
    for field in g.estimated:
        assert field in g.notes or field.startswith("memory"), f"{gpu_id}.{field} estimated without a note"
    for price in g.pod_prices:
        assert price.as_of and price.source
    if g.serverless is not None:
        assert g.serverless.as_of and g.serverless.source


def test_measured_memory():
    assert get_gpu("h200").memory_bytes_usable == 150_109_880_320
    assert not get_gpu("h200").memory_usable_estimated
    assert get_gpu("h100-sxm").memory_gib_usable == pytest.approx(79.18, abs=0.005)
    assert get_gpu("l40s").memory_usable_estimated


def test_known_figures():
    h100 = get_gpu("h100-sxm")
    assert h100.flops_per_s("bf16") == 989e12
    assert h100.memory_bandwidth_bytes_per_s == 3.35e12
    assert h100.pod_price("secure").usd_per_hour == 3.99
    assert h100.pod_price("community").usd_per_hour == 2.69
    assert h100.serverless.flex_usd_per_s == 0.00116
    assert get_gpu("l4").flops_per_s("bf16") == 121e12  # derived: 242 sparse / 2
    assert "bf16_flops_per_s" in get_gpu("l4").estimated


def test_missing_rate_and_price_raise_naming_gpu():
    with pytest.raises(PlannerError, match="a100-80gb-sxm.*fp8"):
        get_gpu("a100-80gb-sxm").flops_per_s("fp8")
    with pytest.raises(PlannerError, match="rtx-3090"):
        get_gpu("rtx-3090").flops_per_s("bf16")
    with pytest.raises(PlannerError, match="a100-40gb-sxm.*runpod secure"):
        get_gpu("a100-40gb-sxm").pod_price("secure")
    assert get_gpu("a10g").serverless is None
    assert get_gpu("mi300x").serverless is None


def test_unknown_gpu_lists_close_ids():
    with pytest.raises(PlannerError, match="h100-sxm"):
        get_gpu("h100")


def test_user_yaml(tmp_path):
    raw = yaml.safe_load((data_dir("gpu_catalog") / "l40s.yaml").read_text())
    raw["id"] = "my-l40s"
    raw["pod_prices"] = [{"provider": "runpod", "cloud": "secure", "usd_per_hour": 0.5, "as_of": "2026-11-26",
                          "source": "my quote"}]
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    g = get_gpu(str(path))
    assert g.id == "my-l40s" and g.pod_price().usd_per_hour == 0.5


@pytest.mark.parametrize("text,match", [
    ("id: [unclosed", "not valid YAML"),
    ("- a\n- b\n", "mapping"),
    ("id: x\nname: x\nmemory_gb: -1\n", "memory_gb"),
    ("id: x\nname: x\nmemroy_gb: 80\n", "memroy_gb"),
])
def test_bad_yaml(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PlannerError, match=match):
        load_gpu_yaml(path)


def test_catalog_is_cached_copy():
    a = load_catalog()
    a.pop("h100-sxm")
    assert "h100-sxm" in load_catalog()


def test_catalog_table_stars_estimated_rates_only() -> None:
    from planner.cli.catalog import render_gpus

    rows = {line.split()[0]: line for line in render_gpus(load_catalog()).splitlines()[1:-1]}
    # L4's dense rates are derived from sparse figures; H100 SXM's come straight from a source.
    assert "121*" in rows["l4"] and "242*" in rows["l4"]
    assert " 989 " in rows["h100-sxm"] and "989*" not in rows["h100-sxm"]
