"""Reading the user's files safely: text that must be UTF-8 from a regular file, YAML without
billion-laughs aliases or nesting deep enough to exhaust the stack, and error messages that quote
at most a short piece of a value.

Everything here raises PlannerError with one line that names the file and says how to fix it.
"""

from __future__ import annotations

import reprlib
import stat
from pathlib import Path
from typing import Any

import yaml

from planner.errors import PlannerError

# A user's YAML (a profile, a GPU entry) is a few kilobytes; traces are CSV/JSONL read elsewhere.
MAX_YAML_BYTES = 8 * 2**20
# Deeper than any profile or catalog entry needs (they are 6 levels deep); far below Python's stack.
MAX_YAML_DEPTH = 64
# Nodes a document may expand to once aliases are followed: a profile has a few hundred.
MAX_YAML_NODES = 200_000

QUOTE_CHARS = 80  # the most of a value an error message quotes
_QUOTE = reprlib.Repr()
_QUOTE.maxstring = 60
_QUOTE.maxother = 60
_QUOTE.maxlist = _QUOTE.maxtuple = _QUOTE.maxdict = _QUOTE.maxset = 6
_QUOTE.maxlevel = 2


def quote(value: Any) -> str:
    """A short repr of a value for an error message (a value can be megabytes, or an alias bomb)."""
    text = _QUOTE.repr(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 3] + "..."


def regular_file(path: str | Path, what: str, hint: str = "") -> Path:
    """The path, checked to be an existing regular file (not a folder, FIFO or device).

    Raises:
        PlannerError: naming `what` ("profile", "trace file", ...) and the path.
    """
    p = Path(path).expanduser()
    fix = f" ({hint})" if hint else ""
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise PlannerError(f"{what} not found: {p}{fix}") from None
    except OSError as err:
        raise PlannerError(f"{what} {p} cannot be read ({err.strerror}){fix}") from None
    if stat.S_ISDIR(mode):
        raise PlannerError(f"{what} {p} is a folder: give a file{fix}")
    if not stat.S_ISREG(mode):
        raise PlannerError(f"{what} {p} is not a regular file (a pipe or device): give a file{fix}")
    return p


def read_text(path: str | Path, what: str, *, max_bytes: int | None = None, hint: str = "") -> str:
    """A regular file's contents as UTF-8 text."""
    p = regular_file(path, what, hint)
    try:
        if max_bytes is not None and p.stat().st_size > max_bytes:
            raise PlannerError(f"{what} {p} is {p.stat().st_size:,} bytes, more than {max_bytes:,}: is it the right file?")
        data = p.read_bytes()
    except OSError as err:
        raise PlannerError(f"{what} {p} cannot be read ({err.strerror})") from None
    return decode_utf8(data, p, what)


def decode_utf8(data: bytes, path: Path | str, what: str) -> str:
    """UTF-8 text of a file's bytes (a leading BOM is dropped), else a line naming the bad byte."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise PlannerError(
            f"{what} {path} is not UTF-8 text (byte 0x{data[err.start]:02x} on line {line}): "
            "save it as UTF-8, or check that it is the right file"
        ) from None
    if "\x00" in text:
        raise PlannerError(f"{what} {path} holds NUL bytes (a binary file?): give a text file")
    return text


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_Loader):
    """yaml's safe loader (libyaml's when installed) that refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {quote(key)}: keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _check_shape(text: str, path: Path, what: str) -> None:
    """Refuse deep nesting and alias expansion before anything is built (events are a flat stream)."""
    depth = 0
    sizes: dict[str, int] = {}  # anchor -> nodes it expands to
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, nodes so far) of each open collection
    total = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise PlannerError(
                    f"{what} {path}: nested more than {MAX_YAML_DEPTH} levels deep (line {line}): "
                    "a profile needs a handful; check the file"
                )
            open_nodes.append((event.anchor, 1))
            continue
        if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
            anchor, n = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = n
            if open_nodes:
                a, m = open_nodes[-1]
                open_nodes[-1] = (a, m + n)
            continue
        if isinstance(event, yaml.AliasEvent):
            n = sizes.get(event.anchor or "", 1)
        elif isinstance(event, yaml.ScalarEvent):
            n = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        else:
            continue
        total += n
        if open_nodes:
            a, m = open_nodes[-1]
            open_nodes[-1] = (a, m + n)
            total_now = m + n
        else:
            total_now = n
        if total > MAX_YAML_NODES or total_now > MAX_YAML_NODES:
            raise PlannerError(
                f"{what} {path}: its aliases (*name) expand to more than {MAX_YAML_NODES:,} values: "
                "write the values out, or check the file"
            )


def load_yaml(path: str | Path, what: str, *, hint: str = "") -> Any:
    """Parse a YAML file safely: a regular UTF-8 file, no deeper than MAX_YAML_DEPTH, aliases that
    expand to at most MAX_YAML_NODES values, no duplicate keys."""
    return load_yaml_text(path, what, hint=hint)[0]


def load_yaml_text(path: str | Path, what: str, *, hint: str = "") -> tuple[Any, str]:
    """`load_yaml`'s document and the file's text (for callers that map errors to lines)."""
    p = Path(path)
    text = read_text(p, what, max_bytes=MAX_YAML_BYTES, hint=hint)
    return parse_yaml(text, p, what), text


def parse_yaml(text: str, p: Path, what: str) -> Any:
    """`load_yaml` on text already read; `p` and `what` name the file in errors."""
    try:
        _check_shape(text, p, what)
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise PlannerError(f"{what} {p}:{where} is not valid YAML ({problem})") from None
