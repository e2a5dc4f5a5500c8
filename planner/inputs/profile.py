"""The profile a user writes: model, serving settings, traffic, SLO, candidates, prices, billing.

One pydantic model (`Profile`) is the single source of truth for a planning question. Every section
rejects unknown keys so a typo in the YAML fails loudly, and `load_profile` turns validation errors
into one `PlannerError` line that names the field ("traffic.arrivals.rate_per_s: must be > 0").
Paths inside a profile (trace files, a model's config.json) are resolved relative to the profile
file. Every field is documented in the README's annotated profile and in docs/profile.md. The
sections live in `sections.py` and `traffic_sections.py`; this module re-exports them.
"""

from __future__ import annotations

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
    ModelSection,
    OptimizerSection,
    PriceOverride,
    ServingSection,
    SloSection,
    _Section,
)
from planner.inputs.traffic_sections import *  # noqa: F401,F403
from planner.inputs.traffic_sections import TrafficSection
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

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str | Path | None = None) -> Profile:
        """Validate a parsed profile; relative paths are resolved against base_dir (default cwd)."""
        return cls.model_validate(data, context={"base_dir": str(base_dir or Path.cwd())})


_UNION_TAGS = {
    "poisson", "gamma", "onoff", "diurnal", "piecewise", "trace",
    "fixed", "uniform", "lognormal", "empirical",
}
_MESSAGES = {
    "extra_forbidden": "unknown key (check the spelling against the README's annotated profile)",
    "missing": "required field is missing",
}


def _model_at(loc: list[Any]) -> type[BaseModel] | None:
    """The section model that holds the last element of a pydantic error location."""
    cls: Any = Profile
    for part in loc[:-1]:
        if isinstance(part, int):
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


def validation_message(err: ValidationError, prefix: str = "") -> str:
    """One line naming the first bad field, e.g. 'traffic.arrivals.rate_per_s: must be > 0'.

    Unknown keys are reported first (a typo also makes the intended key look missing).
    """
    first = first_validation_error(err)
    loc = list(first.get("loc", ()))
    # Drop the union tag pydantic inserts after a discriminated field (arrivals.poisson.rate_per_s).
    parts = [
        str(p)
        for i, p in enumerate(loc)
        if not (i > 0 and loc[i - 1] in ("arrivals", "sizes") and p in _UNION_TAGS)
    ]
    where = ".".join(parts) or "profile"
    kind = first.get("type", "")
    ctx = first.get("ctx") or {}
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
        msg = f"must be {op} {bound} (got {first.get('input')!r})"
    else:
        msg = re.sub(r"^(Value|Assertion) error, ", "", str(first.get("msg", "invalid value")))
        if kind.endswith(("_type", "_parsing")) and "input" in first:
            msg += f" (got {first['input']!r})"
    return f"{prefix}{where}: {msg}"


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


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile YAML; paths inside are relative to the file.

    Raises:
        PlannerError: the file is missing, is not YAML, or a field is invalid (the message names it).
    """
    path = _find_profile(Path(path))
    if not path.is_file():
        raise PlannerError(
            f"profile not found: {path} (give a YAML file; shipped ones: {', '.join(shipped_profiles())})"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise PlannerError(f"{path}:{where} is not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise PlannerError(f"{path}: a profile is a YAML mapping with model, traffic, slo, candidates")
    data.setdefault("name", path.stem)
    try:
        return Profile.from_dict(data, path.resolve().parent)
    except ValidationError as err:
        raise PlannerError(validation_message(err, prefix=f"{path.name}: ")) from None
