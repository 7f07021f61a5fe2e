"""A site at its limit in a closed loop: the real allocation against simulated cars.

The allocation (edge.core.allocation.allocate, the code the service runs every
control step) decides limits from a grid meter reading and the cars' samples;
this module plays the physical site around it, second by second:

- a car follows a new limit only after a lag (5 to 10 s by default, drawn anew for
  every change), then ramps towards it at a finite rate; it never draws more than
  it can take (its own maximum) nor more than the limit it follows;
- its wallbox reports the car's current every 10 to 30 s (each wallbox its own
  interval and phase), stamped with the time it was taken: what a MeterValues
  frame gives the edge;
- the grid meter reads building load plus what the cars really draw, every poll
  (1 s by default), optionally with noise;
- a profile the allocation changes is counted and handed to the car at once (the
  OCPP round trip is milliseconds against the car's seconds).

What it records is what a site owner would ask: how often each car was sent a new
profile, and when and by how much the grid current exceeded the grid's limit.
Used by tests/sim/test_closed_loop.py and bench/bench_settle.py; everything is
integer deciamps and whole seconds, and a seed makes a run repeatable.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

from edge.core.alloc_config import AllocConfig
from edge.core.allocation import allocate
from edge.core.circuits import CircuitTree


@dataclass
class Plant:
    """How the simulated cars and meters behave (seconds, deciamps)."""
    lag_s: tuple[int, int] = (5, 10)          # a car starts to follow a new limit after this
    ramp_da_per_s: int = 10                   # then moves towards it this fast (1 A/s)
    sample_every_s: tuple[int, int] = (10, 30)  # each wallbox's MeterValues interval
    poll_s: int = 1                           # grid meter poll and control step
    noise_da: int = 0                         # grid meter noise, +- this, uniform


class Car:
    """One car behind one connector (three phases, all alike)."""

    def __init__(self, key: tuple, takes_da: int, every_s: int, first_sample_s: int,
                 rnd: random.Random, plant: Plant) -> None:
        self.key = key
        self.takes_da = takes_da
        self.every_s = every_s
        self.next_sample_s = first_sample_s
        self.rnd = rnd
        self.plant = plant
        self.pending: list[tuple[int, int]] = []   # (follows from, limit)
        self.aim_da = 0
        self.draw_da = 0
        self.sample: tuple | None = None
        self.sample_at_s: int | None = None
        self.changes: list[int] = []               # when a new limit was sent
        self.told_da = 0                           # the limit last sent

    def send(self, now_s: int, limit_da: int) -> None:
        self.changes.append(now_s)
        self.told_da = limit_da
        lag = self.rnd.randint(*self.plant.lag_s)
        start = now_s + lag
        if self.pending and self.pending[-1][0] > start:
            start = self.pending[-1][0]     # a car follows its limits in the order given
        self.pending.append((start, limit_da))

    def tick(self, now_s: int) -> None:
        """Advance one second: follow what is due, ramp, and sample when it is time."""
        while self.pending and self.pending[0][0] <= now_s:
            self.aim_da = min(self.pending.pop(0)[1], self.takes_da)
        step = self.plant.ramp_da_per_s
        if self.draw_da < self.aim_da:
            self.draw_da = min(self.aim_da, self.draw_da + step)
        elif self.draw_da > self.aim_da:
            self.draw_da = max(self.aim_da, self.draw_da - step)
        if now_s >= self.next_sample_s:
            self.sample = (self.draw_da,) * 3
            self.sample_at_s = now_s
            self.next_sample_s = now_s + self.every_s


@dataclass
class Record:
    """What one run saw, second by second after the warm-up."""
    over_da: list[int] = field(default_factory=list)      # grid minus its limit, worst phase
    # What the limits in force allow: their sum plus the real building load minus the
    # grid limit (above 0: if the cars drew their limits, the grid would be over).
    allowed_over_da: list[int] = field(default_factory=list)
    grid_da: list[int] = field(default_factory=list)      # worst phase's grid current
    changes: dict = field(default_factory=dict)           # key -> profile changes in the window
    seconds: int = 0

    def episodes(self, above_da: int = 0, series: list[int] | None = None) -> list[tuple[int, int, int]]:
        """(start second, duration s, peak over the limit) of every stretch where the
        grid (or ``series``, e.g. allowed_over_da) was more than ``above_da`` over its limit."""
        out = []
        start = None
        peak = 0
        for t, v in enumerate((self.over_da if series is None else series) + [-(1 << 30)]):
            if v > above_da:
                if start is None:
                    start, peak = t, v
                peak = max(peak, v)
            elif start is not None:
                out.append((start, t - start, peak))
                start = None
        return out

    def per_car_per_hour(self) -> list[float]:
        hours = self.seconds / 3600.0
        return sorted(n / hours for n in self.changes.values())


class Site:
    """n identical 3-phase connectors (6 to 16 A) under one grid limit, each with a car."""

    def __init__(self, n: int = 100, grid_da: int = 10000, margin_da: int = 20, seed: int = 1,
                 plant: Plant | None = None, cfg: AllocConfig | None = None,
                 takes_da: Callable[[random.Random, int], int] | None = None) -> None:
        self.plant = plant or Plant()
        self.cfg = cfg or AllocConfig()
        self.rnd = random.Random(seed)
        self.grid_limit_da = grid_da
        self.tree = CircuitTree()
        self.tree.add_circuit("grid", None, grid_da, None, margin_da)
        self.cars: list[Car] = []
        for x in range(n):
            sid = "CP%03d" % x
            self.tree.add_circuit(sid, "grid", None)
            self.tree.add_connector((sid, 1), sid, 3, (0, 1, 2), 60, 160)
            takes = takes_da(self.rnd, x) if takes_da else 160
            every = self.rnd.randint(*self.plant.sample_every_s)
            self.cars.append(Car((sid, 1), takes, every, self.rnd.randint(0, every - 1), self.rnd,
                                 self.plant))
        self.state = None
        self.now_s = 0
        self.last = None

    def sessions(self) -> list[dict]:
        return [{"key": c.key, "session_id": "s-%s" % c.key[0], "started_s": 0, "prioritised": False,
                 "drawn_da": c.sample, "drawn_at_s": c.sample_at_s, "controllable": True}
                for c in self.cars]

    def run(self, seconds: int, building_da: Callable[[int], int], record: Record | None = None) -> Record | None:
        """Run ``seconds`` of site time; ``building_da(t)`` is the other load per phase.
        With ``record``, what happened is added to it."""
        poll = self.plant.poll_s
        for _ in range(seconds):
            t = self.now_s
            for car in self.cars:
                car.tick(t)
            ev = sum(c.draw_da for c in self.cars)
            building = building_da(t)
            grid = building + ev
            if self.plant.noise_da:
                grid += self.rnd.randint(-self.plant.noise_da, self.plant.noise_da)
            grid = max(0, grid)
            if t % poll == 0:
                r = allocate(self.tree, self.sessions(), {"current_da": [grid] * 3, "at_s": t}, t,
                             self.state, self.cfg)
                self.state = r.state
                self.last = r
                by_key = {c.key: c for c in self.cars}
                for key, (limit, _phases) in r.changed.items():
                    by_key[key].send(t, limit)
                    if record is not None:
                        record.changes[key] = record.changes.get(key, 0) + 1
            if record is not None:
                record.over_da.append(grid - self.grid_limit_da)
                told = sum(min(c.told_da, c.takes_da) for c in self.cars)
                record.allowed_over_da.append(building + told - self.grid_limit_da)
                record.grid_da.append(grid)
                record.seconds += 1
            self.now_s += 1
        if record is not None:
            for car in self.cars:
                record.changes.setdefault(car.key, 0)
        return record


def random_building_steps(seed: int, seconds: int, start_da: int = 1000) -> Callable[[float], int]:
    """Building load (dA) jumping every 20 to 120 s between 0 and 300 A: often right
    after a fall, while the cars are still following the raises it allowed."""
    rnd = random.Random(seed)
    steps = []
    t = 0
    while t < seconds:
        t += rnd.randint(20, 120)
        steps.append((t, rnd.choice([0, 200, 500, 1000, 1500, 2500, 3000])))

    def building(now: float) -> int:
        v = start_da
        for at, level in steps:
            if at > now:
                break
            v = level
        return v
    return building
