"""The shared typer app and the edge where errors become one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from planner.errors import PlannerError, validation_line

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Size, simulate and optimise LLM inference deployments.",
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> typer.Exit:
    """Print one error line on stderr and return the Exit(2) to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=2)


def handle_errors(fn: F) -> F:
    """Turn PlannerError / pydantic ValidationError raised by core code into exit 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PlannerError as err:
            raise fail(str(err)) from None
        except ValidationError as err:
            raise fail(validation_line(err)) from None

    return wrapper  # type: ignore[return-value]


def emit_json(result: BaseModel | dict) -> None:
    """Print one JSON object on stdout: the result model's dump."""
    if isinstance(result, BaseModel):
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
