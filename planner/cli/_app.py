"""The shared typer app and the edge where errors become one line on stderr and exit code 2."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, TypeVar

import typer
from typer.core import TyperGroup
from pydantic import BaseModel, ValidationError

from planner.errors import PlannerError, validation_line
from planner.inputs.precision import KvCacheDtype, Quantization, WeightDtype
from planner.units import round_floats

# NOTE: recent typer vendors its own copy of click, so the click classes are found through typer's
# public BadParameter rather than imported from `click` (hence `type[Any]`: the type checker cannot
# name a class found at runtime).
_UsageError: type[Any] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_NoArgsIsHelpError = getattr(sys.modules[_UsageError.__module__], "NoArgsIsHelpError", None)


class _OneLineErrors(TyperGroup):
    """The root command: usage errors (a missing or unknown option, a value out of range or not
    among the choices) get the treatment of every bad input, one line on stderr and exit code 2,
    instead of click's usage block; however the app is run (console script or CliRunner)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        def run(standalone: bool) -> Any:
            return super(_OneLineErrors, self).main(args, prog_name, complete_var, standalone, windows_expand_args, **extra)

        if not standalone_mode:
            return run(False)
        try:
            code = run(False)
        except _UsageError as err:
            if _NoArgsIsHelpError is not None and isinstance(err, _NoArgsIsHelpError):
                typer.echo(err.ctx.get_help() if err.ctx else "planner --help")
                sys.exit(0)
            command = err.ctx.command_path if err.ctx else "planner"
            message = err.format_message().replace("Value error, ", "")
            typer.echo(f"error: {message} (see `{command} --help`)", err=True)
            sys.exit(2)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    no_args_is_help=True,
    help="Size, simulate and optimise LLM inference deployments.",
    pretty_exceptions_enable=False,
    # Plain help: flags without '<bool>' metavars, and help printed once when no command is given.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"planner {_package_version()}")
        raise typer.Exit()


def _package_version() -> str:
    """The installed distribution's version (pyproject.toml's), or 'unknown' in a bare checkout."""
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    try:
        return version("planner")
    except PackageNotFoundError:
        return "unknown"


@app.callback()
def _main(
    show_version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False,
) -> None:
    """Size, simulate and optimise LLM inference deployments."""

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> typer.Exit:
    """Print the error on stderr, 'error: ' before each line (one line per problem: a profile with
    three bad fields gets three), and return the Exit(2) to raise."""
    for line in message.splitlines() or [""]:
        typer.echo(f"error: {line}", err=True)
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
    """Print one JSON object on stdout: the result model's dump, floats to 7 significant digits."""
    data = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
    sys.stdout.write(json.dumps(round_floats(data), indent=2) + "\n")


# ------------------------------------------------------------------ options shared by commands
# Declared once so every command reads the same: `--tp`/`-tp`, `--gpu`/`-g`, `--profile`/`-p`,
# `--model`/`-m`, `--seed`, `--json`; choices are Literal types (typer validates and lists them).
BillingChoice = Literal["pod", "serverless", "mix"]
RouterChoice = Literal["least_outstanding", "round_robin", "pods_first"]
ScalerChoice = Literal["queue-delay", "request-count"]
TraceFormatChoice = Literal["azure", "mooncake", "csv"]
TrafficKind = Literal["steady", "bursty", "diurnal", "closed"]

ProfileOption = Annotated[Path, typer.Option("--profile", "-p", help="Profile YAML (a shipped one by name, e.g. bursty.yaml).")]
ModelOption = Annotated[str, typer.Option("--model", "-m", help="Preset id (see `planner catalog --models`) or a Hugging Face config.json path.")]
GpuOption = Annotated[str, typer.Option("--gpu", "-g", help="GPU catalog id (see `planner catalog`) or a GPU YAML path.")]
GpusOption = Annotated[Optional[str], typer.Option("--gpu", "-g", help="GPU catalog id(s), comma-separated, or a GPU YAML path; default: every catalog GPU.")]
TpOption = Annotated[int, typer.Option("--tensor-parallel-size", "--tp", "-tp", min=1, help="GPUs per replica (tensor_parallel_size).")]
OptionalTpOption = Annotated[Optional[int], typer.Option("--tensor-parallel-size", "--tp", "-tp", min=1, help="Fixed tensor_parallel_size; default: the smallest of 1, 2, 4, 8 that fits.")]
SeedOption = Annotated[Optional[int], typer.Option("--seed", help="Random seed (default: the profile's traffic.seed).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout and nothing else there.")]
PrecisionOption = Annotated[Optional[WeightDtype], typer.Option("--precision", help="Weight dtype. Default: the checkpoint's own.")]
QuantizationOption = Annotated[Quantization, typer.Option("--quantization", help="Weight format (awq, gptq: 4-bit, group 128).")]
KvCacheDtypeOption = Annotated[KvCacheDtype, typer.Option("--kv-cache-dtype", help="KV cache dtype (auto = the activation dtype).")]
GpuMemoryUtilizationOption = Annotated[Optional[float], typer.Option("--gpu-memory-utilization", help="Fraction of each GPU's memory the engine may use, in (0, 1]. Default 0.9 (vLLM's).")]


# --- progress on stderr: core code reports progress(phase, done, total); this draws it (rich) ---
ProgressFn = Callable[[str, float, float], None]


@contextlib.contextmanager
def stderr_progress(enabled: bool) -> Iterator[ProgressFn | None]:
    """Yield a progress callback drawing rich bars on stderr, or None when disabled.

    Args:
        enabled: draw at all (callers pass `not quiet and sys.stderr.isatty()`).
    """
    if not enabled:
        yield None
        return
    from rich.console import Console  # noqa: PLC0415  (typer installs rich)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(file=sys.stderr), transient=False)
    tasks: dict[str, Any] = {}  # phase -> rich TaskID

    def update(phase: str, done: float, total: float) -> None:
        if phase not in tasks:
            tasks[phase] = bars.add_task(phase, total=max(total, 1e-9))
        bars.update(tasks[phase], completed=done, total=max(total, 1e-9))

    with bars:
        yield update


def wants_progress(quiet: bool) -> bool:
    """Bars only for a person watching: stderr is a terminal and --quiet was not given."""
    return not quiet and sys.stderr.isatty()
