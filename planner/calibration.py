"""Efficiency parameters of the step-time model, per GPU (owned by issue #3; placeholder shape)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PerfCalibration(BaseModel):
    """Fitted or derived efficiency parameters for one GPU (fields defined by issue #3)."""

    model_config = ConfigDict(extra="allow")
