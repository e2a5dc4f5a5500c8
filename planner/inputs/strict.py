"""The base of every model a user's file fills (profile sections, GPU catalog entries): numbers are
finite, and true/false is not a number (pydantic's lax mode would read `rate_per_s: true` as 1).
"""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError


def _takes_bool(annotation: Any) -> bool:
    """Whether a field's type admits true/false anywhere (bool, Any, or a union/container of them)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_takes_bool(a) for a in get_args(annotation))


class StrictInput(BaseModel):
    """Finite numbers only (NaN and infinities are refused), and no booleans for numbers."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, value in data.items():
            field = cls.model_fields.get(name) if isinstance(name, str) else None
            if field is None or _takes_bool(field.annotation):
                continue
            if isinstance(value, bool) or (isinstance(value, list) and any(isinstance(v, bool) for v in value)):
                raise PydanticCustomError(
                    "bool_not_number", "{field}: true/false is not a valid value here", {"field": name}
                )
        return data
