"""The profile a user writes: model, serving settings, traffic, SLO, candidates, prices, billing.

One pydantic model (`Profile`) is the single source of truth for a planning question. Every section
rejects unknown keys so a typo in the YAML fails loudly, and `load_profile` turns validation errors
into a `PlannerError` with one line per bad field, naming it and its line in the file
("bursty.yaml: line 14: traffic.arrivals.rate_per_s: must be > 0").
Paths inside a profile (trace files, a model's config.json) are resolved relative to the profile
file. Every field is documented in the README's annotated profile and in docs/profile.md. The
sections live in `sections.py` and `traffic_sections.py`; this module re-exports them.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
)

from planner.errors import PlannerError, did_you_mean, first_validation_error

# The sections, re-exported: `planner.inputs.profile` is the one import for a profile's models.
from planner.inputs.sections import *  # noqa: F401,F403
from planner.inputs.sections import (
    BillingSection,
    CandidatesSection,
    CapacitySection,
    HostedApiSection,
    ModelSection,
    OptimizerSection,
    PriceOverride,
    ServingSection,
    SloSection,
    _Section,
)
from planner.inputs.traffic_sections import *  # noqa: F401,F403
from planner.inputs.traffic_sections import TrafficSection
from planner.inputs.catalog import get_gpu, load_catalog
from planner.inputs.reading import load_yaml_text, quote
from planner.resources import data_dir


# ------------------------------------------------------------------------------------ profile
class Profile(_Section):
    """A whole planning question. Load it with `load_profile(path)`."""

    name: str = Field("profile", description="Defaults to the file stem.")
    description: str | None = None
    model: ModelSection
    serving: ServingSection = Field(default_factory=ServingSection)
    traffic: TrafficSection
    slo: SloSection
    candidates: CandidatesSection
    prices: list[PriceOverride] = Field(default_factory=list)
    billing: BillingSection = Field(default_factory=BillingSection)
    optimizer: OptimizerSection = Field(default_factory=OptimizerSection)
    capacity: CapacitySection | None = None
    compare_to: HostedApiSection | None = Field(
        None, description="A hosted API (per-token prices) the report sets the plan against.")

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str | Path | None = None) -> Profile:
        """Validate a parsed profile; relative paths are resolved against base_dir (default cwd)."""
        return cls.model_validate(data, context={"base_dir": str(base_dir or Path.cwd())})


_UNION_TAGS = {
    "poisson", "gamma", "onoff", "diurnal", "piecewise", "trace", "closed",
    "fixed", "uniform", "lognormal", "empirical", "exponential",
}
# Tags of the think-time union (a number of seconds or a distribution): never shown in messages.
_THINK_TAGS = ("_number", "_distribution")
_MESSAGES = {
    "extra_forbidden": "unknown key (check the spelling against the README's annotated profile)",
    "missing": "required field is missing",
}


def _model_at(loc: list[Any]) -> type[BaseModel] | None:
    """The section model that holds the last element of a pydantic error location."""
    cls: Any = Profile
    for part in loc[:-1]:
        if isinstance(part, int) or part in _THINK_TAGS:
            continue
        if isinstance(cls, type) and issubclass(cls, BaseModel) and part in cls.model_fields:
            cls = cls.model_fields[part].annotation
        elif isinstance(part, str) and part in _UNION_TAGS:
            cls = next((m for m in _members(cls) if part in _tags(m)), None)
        else:
            return None
        members = _members(cls)
        cls = members[0] if len(members) == 1 else cls
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _members(tp: Any) -> list[Any]:
    """Unwrap Optional / list / Annotated / Union into the model classes they contain."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return _members(args[0])
    if origin in (Union, UnionType, list):
        return [m for a in args for m in _members(a)]
    return [tp] if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _tags(model: type[BaseModel]) -> tuple[Any, ...]:
    field = model.model_fields.get("process") or model.model_fields.get("distribution")
    return get_args(field.annotation) if field is not None else ()


def _where(loc: tuple[Any, ...]) -> list[Any]:
    """An error location without the union tag pydantic inserts after a discriminated field
    (arrivals.poisson.rate_per_s -> arrivals.rate_per_s)."""
    return [p for i, p in enumerate(loc)
            if not (i > 0 and loc[i - 1] in ("arrivals", "sizes", "_distribution") and p in _UNION_TAGS)
            and p not in _THINK_TAGS]


def _error_text(error: Any) -> str:
    """'<field>: <what is wrong>' for one pydantic error, in the profile's words."""
    loc = list(error.get("loc", ()))
    where = ".".join(str(p) for p in _where(tuple(loc))) or "profile"
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = list(model.model_fields) if model is not None else []
        hint = did_you_mean(str(loc[-1]), allowed, quote=True)
        hint = f"{hint} " if hint else ""
        msg = f"unknown key ({hint}allowed: {', '.join(allowed)})" if allowed else _MESSAGES[kind]
    elif kind in _MESSAGES:
        msg = _MESSAGES[kind]
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()), "?")
        msg = f"must be {op} {bound} (got {quote(error.get('input'))})"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        # pydantic names the class ("instance of ModelSection"): say what the YAML needs instead.
        section = _model_at(loc + ["*"])
        keys = f" with keys {', '.join(section.model_fields)}" if section is not None else ""
        msg = f"must be a section (a YAML mapping){keys} (got {quote(error.get('input'))})"
    else:
        msg = re.sub(r"^(Value|Assertion) error, ", "", str(error.get("msg", "invalid value")))
        if kind.endswith(("_type", "_parsing")) and "input" in error:
            msg += f" (got {quote(error['input'])})"
    return f"{where}: {msg}"


def _reported_errors(err: ValidationError) -> list[Any]:
    """The errors worth a line: all of them, less the 'missing' a reported typo explains
    (`ttft_second` unknown makes `ttft_seconds` look missing)."""
    errors = err.errors()
    hidden: set[tuple[Any, ...]] = set()
    for e in errors:
        if e.get("type") != "extra_forbidden":
            continue
        loc = list(e.get("loc", ()))
        model = _model_at(loc)
        if model is None:
            continue
        close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
        if close:
            hidden.add((*loc[:-1], close[0]))
    return [e for e in errors if not (e.get("type") == "missing" and tuple(e.get("loc", ())) in hidden)]


def validation_messages(err: ValidationError, prefix: str = "", lines: dict[tuple[Any, ...], int] | None = None) -> list[str]:
    """One line per bad field, in file order when `lines` (key path -> YAML line) is given.

    Each reads '<prefix>line N: <field>: <what is wrong>' ('line N: ' only when the field or its
    section is in the file). Unknown keys come first among errors on the same line.
    """
    out: list[tuple[int, int, str]] = []
    for e in _reported_errors(err):
        path = tuple(_where(tuple(e.get("loc", ()))))
        line = None
        if lines:
            for n in range(len(path), 0, -1):
                if path[:n] in lines:
                    line = lines[path[:n]]
                    break
        where = f"line {line}: " if line is not None else ""
        out.append((line or 0, 0 if e.get("type") == "extra_forbidden" else 1, f"{prefix}{where}{_error_text(e)}"))
    return [text for _, _, text in sorted(out, key=lambda t: (t[0], t[1]))]


def validation_message(err: ValidationError, prefix: str = "") -> str:
    """One line naming the first bad field, e.g. 'traffic.arrivals.rate_per_s: must be > 0'.

    Unknown keys are reported first (a typo also makes the intended key look missing).
    """
    return f"{prefix}{_error_text(first_validation_error(err))}"


def yaml_key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Key path -> 1-based line of every key and list item in a YAML document (for error lines)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, path: tuple[Any, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, key.value)
                lines.setdefault(sub, key.start_mark.line + 1)
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, i)] = item.start_mark.line + 1
                walk(item, (*path, i))

    if root is not None:
        walk(root, ())
    return lines


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped with the package (traffic_profiles/*.yaml)."""
    return sorted(p.name for p in data_dir("traffic_profiles").glob("*.yaml"))


def _find_profile(path: Path) -> Path:
    """The profile file; a shipped one by name when the path does not exist here.

    `--profile traffic_profiles/bursty.yaml` (or `bursty.yaml`) then works from any working
    directory, since the shipped profiles are package data; an existing local file always wins.
    """
    if path.exists() or path.is_absolute():
        return path
    parts = path.parts
    if len(parts) == 1 or (len(parts) == 2 and parts[0] == "traffic_profiles"):
        shipped = data_dir("traffic_profiles") / parts[-1]
        if shipped.is_file():
            return shipped
    return path


def profile_source(path: str | Path) -> str | None:
    """The text of the profile file `load_profile(path)` reads (a report keeps a copy), or None."""
    found = _find_profile(Path(path))
    try:
        return found.read_text()
    except OSError:
        return None


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile YAML; paths inside are relative to the file.

    Raises:
        PlannerError: the file is missing, is not YAML, or a field is invalid (the message names it).
    """
    path = _find_profile(Path(path))
    data, text = load_yaml_text(
        path, "profile", hint=f"give a YAML file; shipped ones: {', '.join(shipped_profiles())}"
    )
    if not isinstance(data, dict):
        raise PlannerError(f"{path}: a profile is a YAML mapping with model, traffic, slo, candidates")
    data.setdefault("name", path.stem)
    try:
        profile = Profile.from_dict(data, path.resolve().parent)
    except ValidationError as err:
        # Every bad field at once, one line each with its line in the file.
        lines = validation_messages(err, prefix=f"{path.name}: ", lines=yaml_key_lines(text))
        raise PlannerError("\n".join(lines)) from None
    check_names(profile, prefix=f"{path.name}: ")
    return profile


def check_names(profile: Profile, prefix: str = "") -> None:
    """GPU ids and the pod provider the profile names must exist: a price for a GPU that no run can
    use, or a provider with no prices, would otherwise be ignored silently.

    Raises:
        PlannerError: naming the field, the unknown name and the known ones.
    """
    catalog = load_catalog()
    gpu_ids = set(catalog)
    measured = {e.gpu for e in profile.capacity.entries} if profile.capacity is not None else set()
    gpu_ids |= {g.lower() for g in measured}  # measured capacities bring their own price
    for gpu in profile.candidates.gpus:
        if gpu in measured:
            continue
        try:
            gpu_ids.add(get_gpu(gpu).id)
        except PlannerError as err:
            raise PlannerError(f"{prefix}candidates.gpus: {err}") from None
    seen: set[str] = set()
    for i, price in enumerate(profile.prices):
        gpu = price.gpu.lower()
        if gpu.endswith((".yaml", ".yml")) and Path(price.gpu).is_file():
            gpu = get_gpu(price.gpu).id
        if gpu not in gpu_ids:
            hint = did_you_mean(gpu, gpu_ids, n=3, cutoff=0.4)
            raise PlannerError(
                f"{prefix}prices.{i}.gpu: {price.gpu!r} is no catalog GPU, so its price would never be used "
                f"({hint or 'see `planner catalog`'})"
            )
        if gpu in seen:
            raise PlannerError(f"{prefix}prices.{i}.gpu: a second price for {price.gpu!r}; keep one entry per GPU")
        seen.add(gpu)
    for gpu in profile.optimizer.max_gpus_per_type or {}:
        if gpu.lower() not in {g.lower() for g in profile.candidates.gpus} | gpu_ids:
            raise PlannerError(f"{prefix}optimizer.max_gpus_per_type: {gpu!r} is not among candidates.gpus")
    providers = sorted({p.provider for spec in catalog.values() for p in spec.pod_prices})
    if profile.billing.pod_provider not in providers:
        raise PlannerError(
            f"{prefix}billing.pod_provider: no catalog GPU has a {profile.billing.pod_provider!r} pod price; "
            f"providers: {', '.join(providers)}"
        )
