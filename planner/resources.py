"""Where the shipped data lives: the repository's top-level folders, or the wheel's copies."""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import time
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


# --------------------------------------------------------------- temporary files of dead runs ---
# Temporary files and folders are named ".<name>.<pid>.<random>[.tmp]" so that a later run can tell
# a dead run's leftovers (kill -9, power loss) from a concurrent run's work in progress.
STALE_AFTER_S = 24 * 3600.0


def temp_prefix(name: str) -> str:
    """The prefix of this process's temporary entries for `name`: '.<name>.<pid>.'."""
    return f".{name}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stale_temps(folder: Path, name: str) -> int:
    """Remove `folder`'s leftovers '.<name>.<pid>.*' whose process is gone (or older than a day).

    A live process's entries (a concurrent run) are left alone. Returns how many were removed;
    errors (a read-only folder, a race with another cleaner) are ignored.
    """
    removed = 0
    try:
        entries = list(folder.glob(f".{glob.escape(name)}.*"))
    except OSError:
        return 0
    now = time.time()
    for entry in entries:
        pid_text = entry.name[len(name) + 2:].split(".", 1)[0]
        try:
            old = now - entry.lstat().st_mtime > STALE_AFTER_S
        except OSError:
            continue
        if not pid_text.isdigit():
            # an earlier version's ".<name>.<8 random characters>" (tempfile's names): only when old
            dead = old and re.fullmatch(r"[a-z0-9_]{8}(\.tmp)?", entry.name[len(name) + 2:]) is not None
        else:
            dead = int(pid_text) != os.getpid() and (old or not _pid_alive(int(pid_text)))
        if dead:
            try:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed += 1
            except OSError:
                pass
    return removed
