"""Shared machinery of the bad-input tests: run the `planner` console entry in process, check the
error standard, and generate malformed values for every field of a pydantic schema.

The standard every bad input must meet (docs/errors.md): exit code 2, one line on stderr per bad field
that starts with "error: " and names the field, nothing on stdout, no traceback. An input that
is accepted exits 0.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import signal
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typer.main
from pydantic import BaseModel

from planner.cli import main

# A guard, not a timed assertion: an input that makes the tool run away (a YAML alias bomb, a
# billion-request horizon) fails its case instead of hanging the suite.
GUARD_SECONDS = 60
MAX_ERROR_LINES = 8


class _RunAway(BaseException):
    """Raised by the guard alarm inside a run that did not finish in GUARD_SECONDS."""


@dataclass
class Result:
    code: int | None
    out: str
    err: str
    crash: str = ""  # the traceback of an exception that escaped the CLI

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout ---\n{self.out[:2000]}\n--- stderr ---\n{self.err[:2000]}\n{self.crash[-3000:]}"


class _BuiltOnce:
    """The typer app with its click command built once: typer rebuilds it on every call (~50 ms),
    which would dominate a table of a thousand runs. Same command, same error handling in main()."""

    def __init__(self, app: Any) -> None:
        self.command = typer.main.get_command(app)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.command(*args, **kwargs)


_APP = main.__globals__["app"]
_BUILT = _BuiltOnce(_APP)


def run_cli(*args: str) -> Result:
    """`planner ARGS` in this process, as the console script runs it."""
    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    main.__globals__["app"] = _BUILT
    sys.argv = ["planner", *args]

    def alarm(*_: Any) -> None:
        raise _RunAway(f"still running after {GUARD_SECONDS} s")

    old_handler = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(GUARD_SECONDS)
    code: int | None = None
    crash = ""
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (Exception, _RunAway, RecursionError, MemoryError):  # noqa: BLE001 - any escape is the failure
        crash = traceback.format_exc(limit=-8)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old_handler)
        sys.argv = old_argv
        main.__globals__["app"] = _APP
    return Result(code, out.getvalue(), err.getvalue(), crash)


def assert_clean_error(res: Result, *names: str) -> None:
    """Exit 2, stderr lines that start with "error: " and name the field (every one of `names`),
    empty stdout."""
    assert not res.crash, str(res)
    assert res.code == 2, str(res)
    assert res.out == "", str(res)
    lines = res.err.splitlines()
    # One line per bad field (a profile reports all its bad fields at once); one field, one line,
    # except where pydantic tries several types (a union field) and says why each failed.
    assert 1 <= len(lines) <= MAX_ERROR_LINES and all(line.startswith("error: ") for line in lines), str(res)
    assert max(map(len, lines)) <= 1000, f"error line of {max(map(len, lines))} characters"
    text = res.err.lower()
    for name in names:
        forms = {name.lower()}
        if name.startswith("--"):  # an option may be named by its field in core code's words
            forms |= {name[2:].lower(), name[2:].replace("-", "_").lower()}
        assert any(f in text for f in forms), f"{name!r} not named in: {res.err}"
    assert "Traceback" not in res.err


def assert_ok(res: Result) -> None:
    assert not res.crash, str(res)
    assert res.code == 0, str(res)
    assert "Traceback" not in res.err


def assert_clean(res: Result, *names: str) -> None:
    """Accepted (exit 0), or refused by the standard."""
    assert not res.crash, str(res)
    if res.code == 0:
        assert "Traceback" not in res.err
    else:
        assert_clean_error(res, *names)


# ------------------------------------------------------------------------ schema-driven cases
def schema_class(qualname: str) -> type[BaseModel]:
    """A model class by its module-less name, wherever the package layout keeps it."""
    module_name, cls_name = qualname.rsplit(".", 1)
    candidates = [module_name, f"planner.inputs.{module_name.rsplit('.', 1)[-1]}"]
    for name in candidates:
        with contextlib.suppress(ImportError):
            module = importlib.import_module(name)
            if hasattr(module, cls_name):
                return getattr(module, cls_name)
    raise ImportError(qualname)


def _unwrap(tp: Any) -> tuple[list[Any], bool, list[Any]]:
    """(the non-None types of an annotation, whether None is allowed, constraint metadata)."""
    meta: list[Any] = []
    nullable = False
    out: list[Any] = []

    def walk(t: Any) -> None:
        nonlocal nullable
        origin = get_origin(t)
        if origin is Annotated:
            args = get_args(t)
            meta.extend(args[1:])
            walk(args[0])
        elif origin in (Union, UnionType):
            for a in get_args(t):
                walk(a)
        elif t is type(None):
            nullable = True
        else:
            out.append(t)

    walk(tp)
    return out, nullable, meta


def _bounds(meta: list[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for m in meta:
        for attr in ("gt", "ge", "lt", "le"):
            if getattr(m, attr, None) is not None:
                found[attr] = getattr(m, attr)
        for inner in getattr(m, "metadata", []) or []:
            found.update(_bounds([inner]))
    return found


def _is_model(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, BaseModel)


def _tag_of(model: type[BaseModel]) -> tuple[str, Any] | None:
    for key in ("process", "distribution"):
        f = model.model_fields.get(key)
        if f is not None and get_origin(f.annotation) is Literal:
            return key, get_args(f.annotation)[0]
    return None


@dataclass
class Leaf:
    path: tuple[str | int, ...]
    types: list[Any]
    nullable: bool
    required: bool
    bounds: dict[str, Any]

    @property
    def name(self) -> str:
        return next(str(p) for p in reversed(self.path) if isinstance(p, str))

    @property
    def dotted(self) -> str:
        return ".".join(str(p) for p in self.path)


def leaves(model: type[BaseModel], data: Any, path: tuple[str | int, ...] = (), skip: tuple[str, ...] = ()) -> Iterator[Leaf]:
    """Every field of `model` (given in `data` or not), recursing into the nested models `data` holds."""
    for name, f in model.model_fields.items():
        p = (*path, name)
        if ".".join(map(str, p)) in skip:
            continue
        types, nullable, meta = _unwrap(f.annotation)
        bounds = _bounds([*meta, *f.metadata])
        yield Leaf(p, types, nullable, f.is_required(), bounds)
        value = data.get(name) if isinstance(data, dict) else None
        models = [t for t in types if _is_model(t)]
        if isinstance(value, dict) and models:
            sub = models[0] if len(models) == 1 else next(
                (m for m in models if (tag := _tag_of(m)) and value.get(tag[0]) == tag[1]), None
            )
            if sub is not None:
                yield from leaves(sub, value, p, skip)
        lists = [t for t in types if get_origin(t) is list]
        if isinstance(value, list) and value and isinstance(value[0], dict) and lists:
            inner, _, _ = _unwrap(get_args(lists[0])[0])
            inner_models = [t for t in inner if _is_model(t)]
            if inner_models:
                yield from leaves(inner_models[0], value[0], (*p, 0), skip)


ERROR, CLEAN = "error", "clean"


def mutations(leaf: Leaf) -> list[tuple[str, Any, str]]:
    """(label, bad value, expected) for one field: wrong type, sign, magnitude, NaN/inf, empty.

    expected ERROR: must be refused naming the field; CLEAN: refused naming it, or accepted.
    """
    kinds = {_kind(t) for t in leaf.types}
    out: list[tuple[str, Any, str]] = []
    numeric = kinds & {"int", "float"} and not kinds & {"model", "str"}
    lower = leaf.bounds.get("ge", leaf.bounds.get("gt"))
    if numeric:
        out += [
            ("text", "abc", ERROR),
            ("bool", True, ERROR),
            ("nan", float("nan"), ERROR),
            ("inf", float("inf"), ERROR),
            ("negative", -1, ERROR if lower is not None and lower >= 0 else CLEAN),
            ("huge", 1e30, ERROR if "le" in leaf.bounds or "lt" in leaf.bounds else CLEAN),
        ]
        if kinds == {"int"}:
            out.append(("fraction", 4096.7, ERROR))
    elif kinds == {"bool"}:
        out += [("text", "maybe", ERROR)]
    elif kinds == {"literal"}:
        out += [("unknown", "no-such-choice", ERROR)]
    elif "str" in kinds and not kinds & {"model"}:
        out += [("number", 12345, ERROR if kinds <= {"str", "literal"} else CLEAN), ("list", ["x"], ERROR)]
    elif "list" in kinds:
        out += [("text", "abc", ERROR), ("empty", [], CLEAN), ("bad item", [{"x": {}}], ERROR)]
    elif "dict" in kinds:
        out += [("text", "abc", ERROR), ("bad value", {"x": [["abc"]]}, ERROR)]
    elif "model" in kinds:
        out += [("text", "abc", ERROR), ("empty", {}, CLEAN)]
    if not out:
        return out
    out.append(("null", None, CLEAN if leaf.nullable else ERROR))
    return out


def _kind(t: Any) -> str:
    origin = get_origin(t)
    if origin is Literal:
        return "literal"
    if origin in (list, tuple):
        return "list"
    if origin is dict:
        return "dict"
    if _is_model(t):
        return "model"
    return {int: "int", float: "float", bool: "bool", str: "str"}.get(t, "other")


def set_path(data: Any, path: tuple[str | int, ...], value: Any) -> None:
    for p in path[:-1]:
        data = data[p]
    data[path[-1]] = value
