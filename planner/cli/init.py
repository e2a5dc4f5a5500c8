"""`planner init` (a commented starter profile) and `planner schema` (the profile's JSON Schema)."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from planner.cli._app import ModelOption, TrafficKind, app, handle_errors

@app.command("init")
@handle_errors
def init_cmd(
    model: ModelOption = "llama-3.1-8b",
    traffic: Annotated[TrafficKind, typer.Option("--traffic", help="The traffic shape to start from.")] = "bursty",
    out: Annotated[Optional[str], typer.Option("--out", "-o", help="Write the profile to this file (default: print it).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Print (or write with --out) a commented starter profile to edit into your own question."""
    from planner.report.starter_profile import starter_profile, write_starter_profile  # noqa: PLC0415

    text = starter_profile(model, traffic)
    if out is None:
        typer.echo(text, nl=False)
        return
    path = write_starter_profile(text, out, force=force)
    typer.echo(f"wrote {path}; check it with `planner traffic --profile {path}`", err=True)


@app.command("schema")
@handle_errors
def schema_cmd() -> None:
    """Print the profile's JSON Schema (for editors that validate YAML against a schema)."""
    from planner.inputs.profile import Profile  # noqa: PLC0415

    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **Profile.model_json_schema(),
              "title": "planner profile"}
    typer.echo(json.dumps(schema, indent=2))
