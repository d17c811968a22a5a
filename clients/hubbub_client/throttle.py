"""Pose throttling: send at most `rate_hz` poses per second, always the newest one (sans-I/O).

Poses travel on the unordered, unreliable ``state`` channel, so a stale pose is worthless: the throttle
never queues, it keeps only the latest pending pose and releases it when the interval has elapsed.
"""

from __future__ import annotations

from .wire import Pose


class PoseThrottle:
    def __init__(self, rate_hz: float = 30.0) -> None:
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        self.interval = 1.0 / rate_hz
        self._last_sent: float | None = None
        self._pending: Pose | None = None

    def offer(self, pose: Pose, now: float) -> Pose | None:
        """Submit a new pose; returns it if it may go out right now, else keeps it (replacing older)."""
        if self._last_sent is None or now - self._last_sent >= self.interval:
            self._last_sent = now
            self._pending = None
            return pose
        self._pending = pose
        return None

    def due(self, now: float) -> Pose | None:
        """The pending pose if its time has come (call at `deadline()`), else None."""
        if self._pending is None or self._last_sent is None or now - self._last_sent < self.interval:
            return None
        pose, self._pending = self._pending, None
        self._last_sent = now
        return pose

    def deadline(self) -> float | None:
        """When the pending pose may be sent, or None if nothing is pending."""
        if self._pending is None or self._last_sent is None:
            return None
        return self._last_sent + self.interval
