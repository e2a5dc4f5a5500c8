"""Dtype widths, quantization formats and compute dtypes."""

import pytest

from planner.errors import PlannerError
from planner.inputs.precision import (
    DTYPE_BYTES,
    QUANT_FORMATS,
    activation_dtype,
    activation_precision,
    check_precision_with_quantization,
    compute_dtype,
    kv_cache_bytes_per_element,
)


def test_dtype_widths():
    assert DTYPE_BYTES["fp32"] == 4
    assert DTYPE_BYTES["bf16"] == DTYPE_BYTES["fp16"] == 2
    assert DTYPE_BYTES["fp8"] == DTYPE_BYTES["int8"] == 1
    assert DTYPE_BYTES["int4"] == 0.5
    # mxfp4: 32 x 4 bits + one 8-bit scale per 32 elements = 4.25 bits
    assert DTYPE_BYTES["mxfp4"] == pytest.approx((32 * 4 + 8) / 32 / 8)


def test_awq_group_overhead():
    # 4-bit weights + (fp16 scale + 4-bit zero) per 128 weights
    assert QUANT_FORMATS["awq"].bytes_per_weight == pytest.approx(0.5 + 2.5 / 128)
    assert QUANT_FORMATS["gptq"].bytes_per_weight == QUANT_FORMATS["awq"].bytes_per_weight
    assert QUANT_FORMATS["fp8"].bytes_per_weight == 1.0


def test_compute_dtype():
    assert compute_dtype("bf16") == "bf16"
    assert compute_dtype(None) == "bf16"
    assert compute_dtype(None, "awq") == "fp16"  # weight-only
    assert compute_dtype(None, "gptq") == "fp16"
    assert compute_dtype(None, "fp8") == "fp8"
    assert compute_dtype(None, "w8a8") == "int8"
    assert compute_dtype(None, "mxfp4") == "bf16"
    assert compute_dtype("int4") == "fp16"
    assert compute_dtype("fp8") == "fp8"


def test_kv_element_width():
    assert kv_cache_bytes_per_element("auto") == 2
    assert kv_cache_bytes_per_element("auto", "fp32") == 4
    assert kv_cache_bytes_per_element("auto", "fp8") == 2  # activations stay 16-bit
    assert kv_cache_bytes_per_element("fp8") == 1


def test_bad_inputs():
    with pytest.raises(PlannerError, match="unknown precision"):
        compute_dtype("int3")
    with pytest.raises(PlannerError, match="unknown quantization"):
        compute_dtype(None, "bnb")
    with pytest.raises(PlannerError, match="unknown kv_cache_dtype"):
        kv_cache_bytes_per_element("int8")
    with pytest.raises(PlannerError, match="stores int4"):
        check_precision_with_quantization("fp8", "awq")
    check_precision_with_quantization("int4", "awq")
    check_precision_with_quantization(None, "fp8")


def test_activation_precision_one_rule():
    # plain weights: the precision given, else the checkpoint's dtype when the caller passes it
    assert activation_precision("fp32", "none") == "fp32"
    assert activation_precision(None, "none") is None
    assert activation_precision(None, "none", "fp16") == "fp16"
    assert activation_precision("bf16", "none", "fp16") == "bf16"
    # a quantized format runs 16-bit activations whatever precision is named
    assert activation_precision("fp8", "fp8", "bf16") is None
    assert activation_precision("int8", "w8a8") is None


@pytest.mark.parametrize("quantization", [q for q in QUANT_FORMATS])
def test_quantized_formats_keep_16_bit_activations(quantization):
    """memory (activation_precision -> None) and the old perf path (raw precision) agree for every
    precision a format accepts: the change to one rule moved no figure."""
    implied = QUANT_FORMATS[quantization].weight_dtype
    check_precision_with_quantization(implied, quantization)
    assert activation_dtype(activation_precision(implied, quantization)) == activation_dtype(implied) == "bf16"
