"""The one place output files are written: path checks up front, then atomic writes.

Every writer under planner/report/ goes through here, so a bad output path fails the same way
everywhere (one PlannerError line, nothing half-written) and before a long run, not after it:
the CLIs call `check_output_path` / `check_output_dir` before simulating.

A file is written to a temporary file in the destination's own folder (so the final
`os.replace` is a rename on one filesystem, atomic on POSIX) and gets the permissions a plain
`open()` would give it (0o666 minus the umask; 0o777 minus the umask for scripts), not
`mkstemp`'s private 0o600.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from planner.errors import PlannerError
from planner.resources import remove_stale_temps, temp_prefix


def _umask() -> int:
    """The process umask (read by setting it and putting it back; there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(executable: bool = False) -> int:
    """Permissions of a new file as `open()` (or `chmod +x`) would leave them under the umask."""
    return (0o777 if executable else 0o666) & ~_umask()


def _folder_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def check_output_path(path: str | os.PathLike[str] | None, what: str = "output", *,
                      suffix: str | None = None, example: str = "out.csv") -> Path:
    """Refuse an output file path that cannot be written, before any work is done.

    Checks: a non-empty file name (not a folder, not ending in a separator), an existing parent
    folder that this process may write, an existing destination that is a regular file, and the
    suffix when one is required.

    Args:
        path: the destination file.
        what: how the message names it (the CLI option, e.g. "--records").
        suffix: required file-name ending (e.g. ".png"), case-insensitive; None = any.
        example: a file name suggested when `path` is a folder.
    Returns:
        The path as a Path.
    Raises:
        PlannerError: one line saying what is wrong and how to fix it.
    """
    text = "" if path is None else os.fspath(path)
    if not text.strip():
        raise PlannerError(f"{what}: the path is empty; give a file name, e.g. {what} {example}")
    p = Path(text)
    if p.is_dir():
        raise PlannerError(f"{what} {text}: is a folder; give a file name inside it, e.g. {p / example}")
    if text.endswith((os.sep, "/")) or p.name in ("", ".", ".."):
        raise PlannerError(f"{what} {text}: no file name; give one, e.g. {p / example}")
    if p.exists() and not p.is_file():
        raise PlannerError(f"{what} {text}: exists and is not a regular file; choose another path")
    if suffix is not None and p.suffix.lower() != suffix.lower():
        raise PlannerError(f"{what} {text}: give a file name ending in {suffix}")
    folder = _folder_of(p)
    if not folder.is_dir():
        reason = "is not a folder" if folder.exists() else "does not exist"
        raise PlannerError(f"{what} {text}: folder {folder} {reason}; create it or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PlannerError(f"{what} {text}: folder {folder} is not writable; choose another path")
    return p


def check_plot_path(path: str | os.PathLike[str] | None, what: str = "--plot", *,
                    example: str = "plot.png") -> Path:
    """Refuse an unusable plot path up front (a folder, a missing or read-only folder, not .png)."""
    return check_output_path(path, what, suffix=".png", example=example)


def check_output_dir(path: str | os.PathLike[str] | None, what: str = "output folder") -> Path:
    """Refuse an output folder that cannot be made or written, before any work is done.

    The folder may exist (it must be a writable folder) or not (its nearest existing ancestor
    must be a writable folder: missing parents are created when the report is written).
    Raises:
        PlannerError: one line saying what is wrong and how to fix it.
    """
    text = "" if path is None else os.fspath(path)
    if not text.strip():
        raise PlannerError(f"{what}: the path is empty; give a folder name, e.g. {what} reports/plan")
    p = Path(text)
    if p.exists():
        if not p.is_dir():
            raise PlannerError(f"{what} {text}: exists and is not a folder; choose another path")
        if not os.access(p, os.W_OK | os.X_OK):
            raise PlannerError(f"{what} {text}: folder is not writable; choose another path")
        return p
    ancestor = p.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise PlannerError(f"{what} {text}: {ancestor} is not a folder; choose another path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PlannerError(f"{what} {text}: cannot create it, {ancestor} is not writable; choose another path")
    return p


def _os_error(what: str, path: Path, err: OSError) -> PlannerError:
    return PlannerError(f"{what} {path}: cannot write it ({err.strerror or err}); choose another path")


def write_atomic(path: str | os.PathLike[str], write: Callable[[IO[Any]], object], *, binary: bool = False,
                 executable: bool = False, what: str = "output", suffix: str | None = None) -> Path:
    """Write a file whole or not at all: `write(fh)` fills a temporary file beside `path`, renamed into place.

    Args:
        path: the destination (checked with `check_output_path` first).
        write: called once with the open temporary file (text with newline="" unless `binary`).
        binary: open the temporary file in binary mode.
        executable: give the file execute permission (scripts).
        what: how error messages name the path (e.g. "--plot").
        suffix: required file-name ending, as in `check_output_path`.
    Returns:
        The path written.
    Raises:
        PlannerError: the path is unusable or the OS refused a step (disk full, permissions...);
        nothing is left behind. Other errors from `write` propagate after the cleanup.
    """
    p = check_output_path(path, what, suffix=suffix)
    folder = _folder_of(p)
    try:
        remove_stale_temps(folder, p.name)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(p.name), suffix=".tmp", dir=folder)
    except OSError as err:
        raise _os_error(what, p, err) from None
    try:
        try:
            os.fchmod(fd, file_mode(executable))
            text_opts: dict[str, Any] = {} if binary else {"newline": "", "encoding": "utf-8"}
            with os.fdopen(fd, "wb" if binary else "w", **text_opts) as fh:
                write(fh)
            os.replace(tmp, p)
        except OSError as err:
            raise _os_error(what, p, err) from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def write_bytes(path: str | os.PathLike[str], data: bytes, **kwargs: Any) -> Path:
    """`write_atomic` for bytes already in memory."""
    return write_atomic(path, lambda fh: fh.write(data), binary=True, **kwargs)


def write_text(path: str | os.PathLike[str], text: str, **kwargs: Any) -> Path:
    """`write_atomic` for a string (UTF-8)."""
    return write_atomic(path, lambda fh: fh.write(text), **kwargs)


def write_folder(directory: str | os.PathLike[str], fill: Callable[[Path], None], *,
                 what: str = "output folder", executable: Callable[[Path], bool] | None = None,
                 replace_dirs: tuple[str, ...] = ()) -> list[Path]:
    """Write a folder of files whole or not at all.

    `fill(tmp)` writes everything into a fresh temporary folder beside `directory`; then the
    folder is renamed into place, or, when `directory` already exists, each file is renamed over
    its namesake (other files there are left alone, except inside the subfolders named in
    `replace_dirs`, which are replaced whole: a deploy folder must not keep an earlier plan's
    scripts). Files get `file_mode()`, and execute permission where `executable(relative_path)`
    says so.

    Returns:
        The files written, sorted.
    Raises:
        PlannerError: the folder is unusable, an existing entry would block a file (a folder
        where a file goes), or the OS refused a step; nothing is moved in then.
    """
    d = check_output_dir(directory, what)
    try:
        d.absolute().parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(d.absolute().parent, d.name)
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(d.name), dir=d.absolute().parent))
    except OSError as err:
        raise _os_error(what, d, err) from None
    try:
        try:
            fill(tmp)
            files = sorted(p for p in tmp.rglob("*") if p.is_file())
            dirs = sorted(p for p in tmp.rglob("*") if p.is_dir())
            for f in files:
                os.chmod(f, file_mode(bool(executable and executable(f.relative_to(tmp)))))
            for sub in [tmp, *dirs]:
                os.chmod(sub, file_mode(executable=True))  # mkdtemp makes it private; a report is for sharing
            if not d.exists():
                os.replace(tmp, d)
                return sorted(p for p in d.rglob("*") if p.is_file())
            for f in files:  # refuse before moving anything, so a clash leaves no half-report
                dst = d / f.relative_to(tmp)
                if (dst.exists() and not dst.is_file()) or any(
                        q.exists() and not q.is_dir() for q in dst.parents if d in q.parents):
                    raise PlannerError(f"{what} {d}: {dst} is in the way (not a file); remove it or choose another folder")
            for name in replace_dirs:
                if (tmp / name).is_dir() and (d / name).is_dir():
                    shutil.rmtree(d / name)
            written = []
            for f in files:
                dst = d / f.relative_to(tmp)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(f, dst)
                written.append(dst)
            return written
        except OSError as err:
            raise _os_error(what, d, err) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
