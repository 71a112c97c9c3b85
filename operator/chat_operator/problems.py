"""What can go wrong with one child in a pass, as data: the reconciler collects these instead
of raising, so one bad child never stops the others and status can name every failure."""

from __future__ import annotations

from dataclasses import dataclass

APPLY_FAILED = "ApplyFailed"  # the API server refused the write (422, 403, ...)
PRUNE_FAILED = "PruneFailed"  # a child no longer wanted could not be deleted
CONFLICT = "Conflict"  # an object with the child's name exists and is not ours


@dataclass(frozen=True)
class Problem:
    kind: str
    name: str
    reason: str
    message: str

    def describe(self) -> str:
        if self.reason == CONFLICT:
            return f"{self.kind} {self.name}: {self.message}"
        verb = "delete" if self.reason == PRUNE_FAILED else "apply"
        return f"{self.kind} {self.name}: {verb} failed: {self.message}"
