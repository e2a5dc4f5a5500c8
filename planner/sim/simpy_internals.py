"""The two SimPy 4 fast paths that touch its private attributes, in one place.

Both are exact (the event order SimPy's public API would give) and save an event or an exception
in the simulator's hottest paths. They rely on SimPy 4 internals (`Process._resume`,
`Process._target`, `Event._ok`/`_value`, `Environment.schedule`'s priority), hence the pin
simpy>=4.1,<5 in pyproject.toml; tests/test_sim_seams.py checks both directly, so an upgrade that
breaks them fails there first. SimPy's event and process model: https://simpy.readthedocs.io/en/4.1.1/topical_guides/events.html
"""

from __future__ import annotations

import simpy
from simpy.events import URGENT, Event


class UrgentTimeout(Event):
    """A timeout that fires before ordinary events of the same instant.

    Arrivals use it so that a request arriving exactly when a step ends is seen by the next step's
    schedule in both step and jump mode (SimPy orders same-time events by priority, then by
    creation; Timeout itself is NORMAL priority).
    """

    def __init__(self, env: simpy.Environment, delay: float):
        super().__init__(env)
        self._ok = True
        self._value = None
        env.schedule(self, URGENT, delay)


def wake_earlier(env: simpy.Environment, process: simpy.Process, delay: float) -> None:
    """Make `process`, asleep on a timeout, resume after `delay` instead.

    This is what simpy.Interrupt does (take the process off the event it waits on), minus the
    exception and the extra event: the process's callback moves to a new, earlier timeout; the
    old one later fires with no one listening.
    """
    process.target.callbacks.remove(process._resume)
    wake = env.timeout(delay)
    wake.callbacks.append(process._resume)
    process._target = wake
