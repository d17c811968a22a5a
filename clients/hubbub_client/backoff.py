"""Exponential reconnect backoff with jitter (sans-I/O)."""

from __future__ import annotations

import random


class Backoff:
    """Delays initial, initial·factor, … capped at `maximum`, each spread by ±`jitter` (a fraction).

    Jitter keeps a thousand bots that lost the same server from reconnecting in lockstep.
    """

    def __init__(
        self,
        initial: float = 0.5,
        factor: float = 2.0,
        maximum: float = 15.0,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or factor < 1 or maximum < initial or not 0 <= jitter < 1:
            raise ValueError("invalid backoff parameters")
        self.initial, self.factor, self.maximum, self.jitter = initial, factor, maximum, jitter
        self._rng = rng or random.Random()
        self.attempts = 0

    def next_delay(self) -> float:
        base = min(self.maximum, self.initial * self.factor**self.attempts)
        self.attempts += 1
        return base * (1.0 + self.jitter * (2.0 * self._rng.random() - 1.0))

    def reset(self) -> None:
        """Call after a connection succeeded."""
        self.attempts = 0
