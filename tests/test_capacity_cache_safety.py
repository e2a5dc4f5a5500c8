"""The capacity cache trusts only its own, intact entries for the right candidate, skips what is
not a regular file, leaves no temp files behind, and keeps each answer as soon as it is known."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from planner.capacity import CapacityCache, CapacityResult, capacities

KEY = "0123456789abcdef0123456789abcdef"


def _result(key: str = KEY, rate: float = 4.0, gpu: str = "h100-sxm") -> CapacityResult:
    return CapacityResult(gpu_id=gpu, tensor_parallel_size=1, bucket="all", max_rate_per_s=rate,
                          source="simulated", cache_key=key)


def _task(key: str = KEY, gpu: str = "h100-sxm") -> SimpleNamespace:
    return SimpleNamespace(key=key, gpu_id=gpu, tensor_parallel_size=1, bucket="all")


def test_round_trip_and_no_temp_left(tmp_path: Path) -> None:
    cache = CapacityCache(tmp_path)
    cache.put(KEY, _result())
    assert cache.get(KEY, _task()) == _result()
    assert [p.name for p in (tmp_path / "capacity").iterdir()] == [f"{KEY}.json"]


def test_edited_entry_is_not_trusted(tmp_path: Path) -> None:
    cache = CapacityCache(tmp_path)
    cache.put(KEY, _result())
    path = tmp_path / "capacity" / f"{KEY}.json"
    entry = json.loads(path.read_text())
    entry["result"]["max_rate_per_s"] *= 20  # valid JSON, absurd value
    path.write_text(json.dumps(entry))
    assert cache.get(KEY, _task()) is None


def test_entry_for_another_candidate_or_key_is_not_trusted(tmp_path: Path) -> None:
    cache = CapacityCache(tmp_path)
    cache.put(KEY, _result())
    assert cache.get(KEY, _task(gpu="l4")) is None
    other = "f" * 32
    (tmp_path / "capacity" / f"{other}.json").write_text((tmp_path / "capacity" / f"{KEY}.json").read_text())
    assert cache.get(other) is None
    (tmp_path / "capacity" / f"{KEY}.json").write_text(_result().model_dump_json())  # the old, unsigned format
    assert cache.get(KEY) is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_or_folder_is_skipped_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "capacity"
    folder.mkdir()
    os.mkfifo(folder / f"{KEY}.json")  # reading it would block forever
    (folder / f"{'e' * 32}.json").mkdir()
    cache = CapacityCache(tmp_path)
    assert cache.get(KEY) is None and cache.get("e" * 32) is None


def test_failed_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(self: Path, target: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", full_disk)
    CapacityCache(tmp_path).put(KEY, _result())
    assert list((tmp_path / "capacity").iterdir()) == []


def test_dead_runs_temp_files_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "capacity"
    folder.mkdir()
    dead = folder / f".{'a' * 32}.{2**22 + 7}.tmp"
    dead.write_text("{")
    live = folder / f".{'b' * 32}.{os.getppid()}.tmp"
    live.write_text("{")
    CapacityCache(tmp_path).put(KEY, _result())
    assert not dead.exists() and live.exists()


def test_each_capacity_is_cached_as_it_completes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interrupt after the first answer keeps that answer in the cache."""
    import planner.capacity.tasks as tasks

    done: list[str] = []

    def run_task(task, simulate=None):  # noqa: ANN001, ANN202
        if done:
            raise KeyboardInterrupt
        done.append(task.key)
        return _result(task.key)

    monkeypatch.setattr(tasks, "run_task", run_task)
    cache = CapacityCache(tmp_path)
    todo = [_task(KEY), _task("c" * 32)]
    with pytest.raises(KeyboardInterrupt):
        capacities(todo, cache=cache, workers=1)
    assert cache.get(KEY, todo[0]) is not None and cache.get("c" * 32) is None
