"""Telegram's sending limits, counted per rule (and optionally enforced), and injected faults."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import datetime
from http import HTTPStatus

from tgemu.text import ApiError


@dataclass(frozen=True)
class Violation:
    """One send that broke a rule: which rule, where, when (by the emulator's clock)."""

    rule: str
    chat_id: int
    method: str
    at: datetime


@dataclass
class Violations:
    """Breaches per rule; `log` keeps each one for a test's failure message."""

    global_per_second: int = 0
    private_burst: int = 0
    private_sustained: int = 0
    group_per_minute: int = 0
    log: list[Violation] = field(default_factory=list, repr=False)

    @property
    def total(self) -> int:
        return sum(self.as_dict().values())

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "log"}

    def add(self, violation: Violation) -> None:
        setattr(self, violation.rule, getattr(self, violation.rule) + 1)
        self.log.append(violation)


@dataclass(frozen=True)
class _Rule:
    name: str
    seconds: float
    limit: int


class RateLimiter:
    """Sliding windows over the send times of messages.

    Every sending call counts once (an album is one call): counting album items singly would
    make a 4-photo album impossible under the private-chat burst of 3.
    """

    def __init__(self, per_chat_burst: int) -> None:
        self._global = _Rule("global_per_second", 1.0, 30)
        self._private = (
            _Rule("private_burst", 1.0, per_chat_burst),
            _Rule("private_sustained", 10.0, 10),
        )
        self._group = (_Rule("group_per_minute", 60.0, 20),)
        self._all: deque[float] = deque()
        self._per_chat: dict[int, deque[float]] = {}

    def breaches(self, chat_id: int, private: bool, now: float) -> list[tuple[str, int]]:
        """Rules one more message to `chat_id` at `now` would break, each with its retry_after."""
        chat_times = self._per_chat.get(chat_id, deque())
        checks = [(self._global, self._all)]
        checks += [(rule, chat_times) for rule in (self._private if private else self._group)]
        broken: list[tuple[str, int]] = []
        for rule, times in checks:
            recent = [t for t in times if t > now - rule.seconds]
            excess = len(recent) + 1 - rule.limit
            if excess > 0:
                wait = recent[excess - 1] + rule.seconds - now
                broken.append((rule.name, max(1, math.ceil(wait))))
        return broken

    def record(self, chat_id: int, now: float) -> None:
        times = self._per_chat.setdefault(chat_id, deque())
        for queue in (self._all, times):
            queue.append(now)
            while queue and queue[0] <= now - 60.0:
                queue.popleft()


@dataclass
class Fault:
    """An injected failure for the next `remaining` matching calls.

    `method` None matches every method except getUpdates, so a polling bot's idle loop does
    not swallow a fault meant for its sends; name getUpdates explicitly to fail polling.
    With `executed` the call takes effect and only its answer is lost, as when a response
    goes missing after Telegram acted on it.
    """

    code: int
    remaining: int
    method: str | None
    retry_after: int
    executed: bool

    def matches(self, method: str) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is None:
            return method.lower() != "getupdates"
        return self.method.lower() == method.lower()

    def error(self) -> ApiError:
        if self.code == HTTPStatus.TOO_MANY_REQUESTS:
            return ApiError(
                429,
                f"Too Many Requests: retry after {self.retry_after}",
                retry_after=self.retry_after,
            )
        try:
            phrase = HTTPStatus(self.code).phrase
        except ValueError:
            phrase = "Error"
        return ApiError(self.code, phrase)
