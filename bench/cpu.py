"""CPU time of a server's whole process tree: the process and every descendant (nats-server included).

A sample is user + system seconds per live process. The difference of two samples is what the tree
spent between them; a process that exits between the samples takes its CPU with it (its parent's
``children_*`` times count only waited-for children), so :func:`spent` reports processes that came
or went, and the benchmark treats that as an error instead of a number.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True, slots=True)
class Sample:
    """CPU seconds (user + system) of each process of the tree, by pid, with its name."""

    seconds: dict[int, float]
    names: dict[int, str]

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


@dataclass(frozen=True, slots=True)
class Spent:
    """CPU seconds between two samples: in all, per process name, and the pids that came or went."""

    total: float
    by_name: dict[str, float]
    changed: frozenset[int]


def sample(pid: int) -> Sample:
    root = psutil.Process(pid)
    seconds: dict[int, float] = {}
    names: dict[int, str] = {}
    for process in (root, *root.children(recursive=True)):
        try:
            with process.oneshot():
                times = process.cpu_times()
                name = process.name()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        seconds[process.pid] = times.user + times.system
        names[process.pid] = name
    return Sample(seconds, names)


def spent(before: Sample, after: Sample) -> Spent:
    by_name: dict[str, float] = {}
    for pid, seconds in after.seconds.items():
        name = after.names[pid]
        by_name[name] = by_name.get(name, 0.0) + seconds - before.seconds.get(pid, 0.0)
    changed = frozenset(before.seconds.keys() ^ after.seconds.keys())
    return Spent(total=sum(by_name.values()), by_name=by_name, changed=changed)
