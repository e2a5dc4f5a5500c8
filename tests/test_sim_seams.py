"""The simulator's seams: the SimPy 4 fast paths (checked directly, so an upgrade that breaks them
fails here first), the routing policies, and the one writer of a request's block count."""

from __future__ import annotations

import ast
from pathlib import Path
from types import SimpleNamespace

import simpy

from planner.sim.fleet import ROUTERS, choose_router, least_outstanding, pods_first, round_robin
from planner.sim.simpy_internals import UrgentTimeout, wake_earlier

SIM = Path(__file__).resolve().parent.parent / "planner" / "sim"


def test_wake_earlier_moves_the_wakeup_and_the_old_timeout_resumes_nothing():
    env = simpy.Environment()
    woke: list[float] = []

    def sleeper():
        yield env.timeout(10.0)
        woke.append(env.now)
        yield env.timeout(100.0)  # the old 10 s timeout must not resume this one early
        woke.append(env.now)

    proc = env.process(sleeper())

    def poker():
        yield env.timeout(2.0)
        wake_earlier(env, proc, 1.0)

    env.process(poker())
    env.run()
    assert woke == [3.0, 103.0]


def test_urgent_timeout_fires_before_a_normal_event_of_the_same_instant():
    env = simpy.Environment()
    order: list[str] = []
    env.timeout(5.0).callbacks.append(lambda _e: order.append("normal"))  # created first
    UrgentTimeout(env, 5.0).callbacks.append(lambda _e: order.append("urgent"))
    env.run()
    assert order == ["urgent", "normal"]


def _w(worker_id: int, kind: str = "pod", outstanding: int = 0, cap: int | None = None):
    return SimpleNamespace(worker_id=worker_id, kind=kind, num_outstanding=outstanding, max_outstanding=cap)


def test_routing_policies():
    ready = [_w(0, outstanding=3), _w(1, "flex", 0), _w(2, outstanding=1), _w(3, outstanding=0, cap=0)]
    assert least_outstanding(ready, 0) == 1  # fewest outstanding, a full worker (cap 0) skipped
    assert pods_first(ready, 0) == 2  # the least loaded pod, though a flex worker is emptier
    assert pods_first([_w(0, outstanding=2, cap=2), _w(1, "flex", 5)], 0) == 1  # overflow
    assert [round_robin(ready, s) for s in range(4)] == [0, 1, 2, 0]
    assert least_outstanding([_w(0, outstanding=1, cap=1)], 0) == -1
    assert set(ROUTERS) == {"least_outstanding", "round_robin", "pods_first"}
    assert choose_router("round_robin", SimpleNamespace(overflow_only=True)) == "pods_first"
    assert choose_router("round_robin", None) == "round_robin"


def _num_blocks_writers() -> set[str]:
    writers = set()
    for path in SIM.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
            for t in targets:
                if isinstance(t, ast.Attribute) and t.attr == "num_blocks" and not (
                        isinstance(t.value, ast.Name) and t.value.id == "self"):
                    writers.add(path.name)
    return writers


def test_only_the_kv_cache_manager_writes_a_requests_block_count():
    assert _num_blocks_writers() == {"kv_cache_manager.py"}


def test_simpy_private_attributes_only_in_the_internals_module():
    private = ("_resume", "_target", "_ok", "_value", "URGENT", "schedule")
    users = set()
    for path in SIM.glob("*.py"):
        if path.name == "simpy_internals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in private[:4] and not (
                    isinstance(node.value, ast.Name) and node.value.id == "self"):
                users.add((path.name, node.attr))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("simpy") and \
                    any(a.name == "URGENT" for a in node.names):
                users.add((path.name, "URGENT"))
    assert users == set()
