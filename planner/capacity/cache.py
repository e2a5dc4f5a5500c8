"""The capacity disk cache: keys hash everything a capacity depends on, the source code included."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from planner.capacity.buckets import CAPACITY_ALGORITHM_VERSION
from planner.capacity.search import CapacityResult
from planner.errors import PlannerError
from planner.resources import remove_stale_temps, temp_prefix

# ------------------------------------------------------------------------------ the cache ---


def default_cache_dir() -> Path:
    """The user cache folder: $PLANNER_CACHE_DIR, else $XDG_CACHE_HOME/planner, else ~/.cache/planner."""
    env = os.environ.get("PLANNER_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "planner"


def check_cache_dir(directory: str | Path) -> None:
    """Refuse a cache folder that cannot be a folder: it, or a folder above it, is a file.

    A missing or read-only folder is fine (the cache is created on first write; a read-only one
    costs speed, not correctness), but a file in the path is a mistake the user should see.
    """
    path = Path(directory).expanduser()
    for part in (path / "capacity", *(path / "capacity").parents):
        if part.exists():
            if not part.is_dir():
                raise PlannerError(
                    f"capacity cache folder {directory}: {part} is a file, not a folder; "
                    "give another --cache-dir or use --no-cache"
                )
            return


class CapacityCache:
    """JSON files under <dir>/capacity/<key>.json; `directory=None` disables caching.

    NOTE: writing the cache is the one file write outside planner/report/ the design allows
    ("the capacity cache"); it is atomic (write to a temp file, then rename) so parallel runs
    never read half a file. Each entry carries a checksum of its key and content: an entry edited
    by hand, truncated, or copied under another key is not trusted (it is recomputed), nor one
    that answers a different candidate than its key's. Anything but a regular file is skipped (a
    FIFO would block the read).
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = None if directory is None else Path(directory) / "capacity"
        self._cleaned = False

    def get(self, key: str, task: Any = None) -> CapacityResult | None:
        """The cached answer for `key`, if a valid, untampered one exists (for `task` when given)."""
        if self.directory is None:
            return None
        path = self.directory / f"{key}.json"
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                return None
            entry = json.loads(path.read_text(encoding="utf-8"))
            result = CapacityResult.model_validate(entry["result"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if entry.get("checksum") != _checksum(key, result) or result.cache_key != key:
            return None
        if task is not None and (result.gpu_id, result.tensor_parallel_size, result.bucket) != (
                task.gpu_id, task.tensor_parallel_size, task.bucket):
            return None
        return result

    def put(self, key: str, result: CapacityResult) -> None:
        """Write one answer (atomically); temp files are removed when the write fails."""
        if self.directory is None:
            return
        tmp = self.directory / f"{temp_prefix(key)}tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            if not self._cleaned:
                self._cleaned = True
                remove_stale_cache_temps(self.directory)
            entry = {"result": json.loads(result.model_dump_json()), "checksum": _checksum(key, result)}
            tmp.write_text(json.dumps(entry), encoding="utf-8")
            tmp.replace(self.directory / f"{key}.json")
        except OSError:
            pass  # a read-only or full cache folder costs speed, not correctness
        finally:
            try:
                tmp.unlink()
            except OSError:
                pass


def _checksum(key: str, result: CapacityResult) -> str:
    return hashlib.sha256((key + result.model_dump_json()).encode()).hexdigest()


def remove_stale_cache_temps(directory: Path) -> int:
    """Remove the '.<key>.<pid>.tmp' files of dead runs (a kill, a full disk) from a cache folder."""
    keys = {p.name.split(".")[1] for p in directory.glob(".*.tmp") if p.name.count(".") >= 3}
    return sum(remove_stale_temps(directory, key) for key in keys)


_SOURCE_HASH: str | None = None


# The code a capacity depends on: everything from the inputs up to the capacity search itself
# (profile defaults, model shapes, memory, step times, traffic generation, the simulator, the
# candidate builder). A module moved or added under these stays covered without editing this list.
FINGERPRINT_PACKAGES = ("inputs", "memory", "perf", "traffic", "sim", "capacity")
FINGERPRINT_MODULES = ("units.py", "errors.py", "scenario.py")


def fingerprint_files() -> list[Path]:
    """The source files (and catalog data tables) `_source_fingerprint` hashes, in a stable order.

    The catalog's YAML entries are hashed per GPU by `gpu_fingerprint` (a price change of one GPU
    must not drop every cache entry); any other data file under gpu_catalog/ (a table the models
    read) is hashed here.
    """
    from planner.resources import data_dir  # noqa: PLC0415

    root = Path(__file__).resolve().parent.parent
    files = [f for pkg in FINGERPRINT_PACKAGES for f in (root / pkg).rglob("*.py")]
    files += [root / name for name in FINGERPRINT_MODULES if (root / name).is_file()]
    catalog = Path(data_dir("gpu_catalog"))
    files += [f for f in catalog.rglob("*") if f.is_file() and f.suffix not in (".yaml", ".yml", ".md")]
    return sorted(files)


def _source_fingerprint() -> str:
    """Hash of the code a capacity depends on (see `fingerprint_files`)."""
    global _SOURCE_HASH
    if _SOURCE_HASH is None:
        root = Path(__file__).resolve().parent.parent
        h = hashlib.sha256()
        for f in fingerprint_files():
            name = f.relative_to(root).as_posix() if f.is_relative_to(root) else f.name
            h.update(name.encode())
            h.update(f.read_bytes())
        _SOURCE_HASH = h.hexdigest()[:16]
    return _SOURCE_HASH


def cache_key(parts: dict[str, Any]) -> str:
    """Stable hash of a JSON-able description of a capacity question."""
    blob = json.dumps(
        {**parts, "algorithm": CAPACITY_ALGORITHM_VERSION, "source": _source_fingerprint()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def gpu_fingerprint(gpu_id: str) -> str:
    """Hash of a GPU's catalog entry (specs, calibration, prices) for capacity cache keys."""
    from planner.inputs import catalog  # noqa: PLC0415

    try:
        gpu = catalog.get_gpu(gpu_id)
    except PlannerError:
        return ""
    return hashlib.sha256(gpu.model_dump_json().encode()).hexdigest()[:16]


