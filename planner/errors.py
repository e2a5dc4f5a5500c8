"""The package's one exception type for bad input and unanswerable questions, and the helpers
that word its messages (pydantic errors, close-name suggestions) the same way everywhere."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError


class PlannerError(Exception):
    """Bad input, or a question the tool cannot answer.

    The message is one line saying what is wrong and how to fix it; the CLI prints it on stderr
    and exits with code 2. Core code raises this, never typer.Exit.
    """


def first_validation_error(err: ValidationError) -> Any:
    """The pydantic error to report: an unknown key first (a typo also makes the intended key look
    missing), else the first one."""
    errors = err.errors()
    return next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])


def validation_line(err: ValidationError, default_loc: str = "input") -> str:
    """One line for a pydantic ValidationError: '<loc>: <msg>' of `first_validation_error`."""
    first = first_validation_error(err)
    where = ".".join(str(p) for p in first.get("loc", ())) or default_loc
    # pydantic names the model class ("a valid dictionary or instance of GpuSpec"): users wrote YAML.
    msg = re.sub(r" or instance of \w+", "", str(first.get("msg", "invalid value")))
    return f"{where}: {msg}"


def did_you_mean(name: str, candidates: Iterable[str], *, n: int = 1, cutoff: float = 0.6, quote: bool = False) -> str:
    """'did you mean a, b?' naming up to `n` candidates close to `name` (difflib ratio >= cutoff);
    '' when none is close. `quote` writes them as Python reprs ('a')."""
    close = difflib.get_close_matches(name, list(candidates), n=n, cutoff=cutoff)
    if not close:
        return ""
    return f"did you mean {', '.join(repr(c) if quote else c for c in close)}?"
