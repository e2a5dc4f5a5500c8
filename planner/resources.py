"""Where the shipped data lives: the repository's top-level folders, or the wheel's copies."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Path:
    """Folder of shipped data `name` ("gpu_catalog", "traffic_profiles", "traffic_profiles/traces").

    A source checkout (or an editable install) reads the top-level folder; a wheel reads the copy
    installed as planner.<name with dots>.
    """
    local = _REPO_ROOT / name
    if local.is_dir():
        return local
    package = "planner." + name.replace("/", ".")
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"shipped data folder {name!r} is missing from this installation")
    # The data folders are namespace packages (no __init__.py): take their one location.
    return Path(list(spec.submodule_search_locations)[0])
