"""Prometheus metrics. One registry per server instance, so several servers can live in one process
(tests) without colliding in the global registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.participants = Gauge("hubbub_participants", "Participants in a world", ["world"], registry=r)
        self.connections = Gauge("hubbub_connections", "Open signaling WebSocket connections", registry=r)
        self.messages_in = Counter("hubbub_messages_in", "Client messages received", ["type"], registry=r)
        self.messages_out = Counter("hubbub_messages_out", "Messages sent to clients", ["type"], registry=r)
        self.errors = Counter("hubbub_errors", "Error messages sent, by error code", ["code"], registry=r)
        self.closes = Counter(
            "hubbub_closes", "Connections closed by the server, by close code", ["code"], registry=r
        )
        self.tick_seconds = Histogram(
            "hubbub_tick_seconds",
            "Duration of one world tick (interest + fan-out)",
            ["world"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25),
            registry=r,
        )
        self.poses_accepted = Counter("hubbub_poses_accepted", "Client poses accepted as sent", registry=r)
        self.poses_rejected = Counter(
            "hubbub_poses_rejected",
            "Client poses rejected or corrected (invalid, bounds, speed, rate)",
            ["reason"],
            registry=r,
        )
        self.reloads = Counter("hubbub_config_reloads", "Config reloads, by result", ["result"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
