"""Inputs of a planning question: precisions, model shapes, the GPU catalog and the user's profile.

The lowest layer above units/errors: pydantic models and their loaders, no physics. Import from the
modules (`planner.inputs.models`, `.catalog`, `.profile`, `.precision`, `.calibration`).
"""
