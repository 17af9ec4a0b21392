"""The throttles' clock for the accounts tests."""

from __future__ import annotations

import pytest


class Clock:
    """The throttles' clock, stepped by the test instead of waited for. It starts on a
    minute's boundary."""

    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from governance.accounts import throttling

    stepped = Clock()
    monkeypatch.setattr(throttling, "now", stepped)
    return stepped
