"""What this process's polls did: counted as they finish, read by `run --once` and the logs."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest import once


@dataclass
class PollStats:
    """This process's polls. A poll counts once it has an outcome (what the `polls` counter in
    Redis counts too); one still waiting for its host or its answer is in flight. `polls` counts
    polls, `feeds` the distinct feeds among them: `run --once` polls a deferred feed again, and
    that is two polls of one feed (tests/test_operator_output.py)."""

    started: int = 0
    items_new: int = 0
    enqueued: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    deferred: dict[str, int] = field(default_factory=dict)  # item deferrals, by reason
    left: dict[str, once.Left] = field(default_factory=dict)  # feed id -> what it still owes
    jobs_left: int = 0  # run --once: jobs still queued or started when the workers stopped
    polled: set[str] = field(default_factory=set)  # ids of the feeds with a finished poll

    def count(self, outcome: str, fid: str) -> None:
        self.by_outcome[outcome] = self.by_outcome.get(outcome, 0) + 1
        self.polled.add(fid)

    @property
    def polls(self) -> int:
        """Polls finished, with an outcome: the sum of `by_outcome`."""
        return sum(self.by_outcome.values())

    @property
    def feeds(self) -> int:
        """Distinct feeds with a finished poll."""
        return len(self.polled)

    @property
    def in_flight(self) -> int:
        return max(0, self.started - self.polls)
