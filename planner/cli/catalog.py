"""`planner catalog`: the GPUs of the catalog (or, with --models, the model presets)."""

from __future__ import annotations

from typing import Annotated

import typer

from planner.inputs.catalog import GpuSpec, load_catalog
from planner.cli._app import app, emit_json, handle_errors
from planner.cli._app import JsonOption
from planner.errors import PlannerError
from planner.memory import kv_bytes_per_token
from planner.inputs.models import get_model, list_presets, param_counts


def _price(gpu: GpuSpec, cloud: str) -> str:
    try:
        p = gpu.pod_price(cloud)
    except PlannerError:
        return "-"
    return f"{p.usd_per_hour:.2f}{'*' if p.estimated else ''}"


def _rate(gpu: GpuSpec, field: str) -> str:
    value = getattr(gpu, field)
    if value is None:
        return "-"
    return f"{value / 1e12:,.0f}{'*' if field in gpu.estimated else ''}"


def step_times(gpu: GpuSpec) -> dict[str, object]:
    """Where the step-time model's kernel times for this GPU come from (JSON `step_times`)."""
    from planner.perf.transfer import tables_for  # noqa: PLC0415

    t = tables_for(gpu)
    if t is None:
        return {"measured": False, "estimated": True, "vllm_version": None, "source": "no kernel tables"}
    return {"measured": t.measured, "estimated": not t.measured, "vllm_version": t.vllm_version, "source": t.source}


def render_gpus(gpus: dict[str, GpuSpec]) -> str:
    """One line per GPU: memory, bandwidth, dense rates, Runpod prices, where step times come from."""
    lines = [
        f"{'id':<15}{'memory GB':>10}{'usable GiB':>12}{'TB/s':>6}{'bf16 TF':>9}{'fp8 TF':>8}"
        f"{'secure $/h':>11}{'commun. $/h':>12}{'flex $/s':>10}{'active $/s':>11}  {'step times':<13}name"
    ]
    for g in gpus.values():
        sl = g.serverless
        flex = f"{sl.flex_usd_per_s:.5f}" if sl else "-"
        active = f"{sl.active_usd_per_s:.5f}" if sl and sl.active_usd_per_s else "-"
        usable = f"{g.memory_gib_usable:,.2f}{'*' if g.memory_usable_estimated else ' '}"
        lines.append(
            f"{g.id:<15}{g.memory_gb:>10g}{usable:>12}{g.memory_bandwidth_bytes_per_s / 1e12:>6.2f}"
            f"{_rate(g, 'bf16_flops_per_s'):>9}{_rate(g, 'fp8_flops_per_s'):>8}{_price(g, 'secure'):>11}"
            f"{_price(g, 'community'):>12}{flex:>10}{active:>11}  {_step_times_cell(g):<13}{g.name}"
        )
    lines.append(
        "* estimated or derived (usable memory by a stated rule, a rate derived from a sparse figure or "
        "an unsourced table, a low-confidence price). '-' = no source gives it. "
        "Dense rates in TFLOPS. Prices are per GPU: $ per GPU-hour for pods (secure, community cloud), $ per "
        "GPU-second for serverless workers. Sources, dates and notes: `planner catalog --json` or gpu_catalog/*.yaml."
    )
    lines.append(
        "step times: 'vLLM x.y' = vLLM's kernels measured on this GPU (gpu_catalog/kernels/); 'estimated*' = "
        "transferred from the measured GPUs by the rule in docs/perf.md."
    )
    return "\n".join(lines)


def _step_times_cell(gpu: GpuSpec) -> str:
    st = step_times(gpu)
    return f"vLLM {st['vllm_version']}" if st["measured"] else "estimated*"


def _model_rows() -> list[dict]:
    rows = []
    for name in list_presets():
        spec = get_model(name)
        counts = param_counts(spec)
        rows.append(dict(
            id=name, model_type=spec.model_type, num_hidden_layers=spec.num_hidden_layers,
            hidden_size=spec.hidden_size, num_attention_heads=spec.num_attention_heads,
            num_key_value_heads=spec.num_key_value_heads, num_experts=spec.num_experts,
            params=counts.total, active_params=counts.active,
            published_params=spec.published_params, default_dtype=spec.default_dtype,
            default_quantization=spec.default_quantization,
            kv_bytes_per_token_bf16=kv_bytes_per_token(spec, "bf16"),
            sliding_window=spec.sliding_window, source=spec.source,
        ))
    return rows


def render_models(rows: list[dict]) -> str:
    """One line per model preset."""
    lines = [f"{'id':<17}{'layers':>7}{'hidden':>7}{'heads/kv':>9}{'experts':>8}{'params B':>9}"
             f"{'active B':>9}{'weights':>8}{'KV B/token (bf16)':>18}"]
    for r in rows:
        weights = r["default_quantization"] if r["default_quantization"] != "none" else r["default_dtype"]
        lines.append(
            f"{r['id']:<17}{r['num_hidden_layers']:>7}{r['hidden_size']:>7}"
            f"{str(r['num_attention_heads']) + '/' + str(r['num_key_value_heads']):>9}{r['num_experts'] or '-':>8}"
            f"{r['params'] / 1e9:>9.2f}{r['active_params'] / 1e9:>9.2f}{weights:>8}{r['kv_bytes_per_token_bf16']:>18,}"
        )
    lines.append("KV B/token counts every layer as full attention (sliding-window layers keep at most their window). "
                 "Any Hugging Face config.json path also works as --model.")
    return "\n".join(lines)


@app.command("catalog")
@handle_errors
def catalog(
    models: Annotated[bool, typer.Option("--models", help="List the model presets instead of the GPUs.")] = False,
    json_out: JsonOption = False,
) -> None:
    """The GPUs of the catalog with specs and prices, or (--models) the model presets."""
    if models:
        rows = _model_rows()
        if json_out:
            emit_json({"models": rows})
        else:
            typer.echo(render_models(rows))
        return
    gpus = load_catalog()
    if json_out:
        emit_json({"gpus": [{**g.model_dump(mode="json"), "step_times": step_times(g)} for g in gpus.values()]})
    else:
        typer.echo(render_gpus(gpus))
