"""Prometheus metrics. One registry per server instance, so several servers can live in one process
(tests) without colliding in the global registry."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

# Per-track RTCP/RTP figures exported from the media backend's stats (LiveKit-style track telemetry).
TRACK_FIELDS = {
    "packets": "RTP packets on the track",
    "bytes": "RTP payload bytes on the track",
    "bitrate_bps": "Current bitrate of the track, bits per second",
    "packets_lost": "Packets reported lost (RTCP receiver reports)",
    "fraction_lost": "Fraction lost in the last RTCP report interval",
    "jitter_ms": "Interarrival jitter, milliseconds",
    "rtt_ms": "Round-trip time from RTCP, milliseconds",
}
TRACK_LABELS = ["world", "participant", "kind", "direction", "mid"]

MediaStatsSource = Callable[[], Iterable[tuple[str, dict[str, Any]]]]


class _TrackCollector(Collector):
    """Reads the media backends' stats at scrape time: no per-packet bookkeeping in Prometheus."""

    def __init__(self, source: MediaStatsSource) -> None:
        self.source = source

    def describe(self) -> list[Any]:
        return []  # collected lazily; nothing to pre-register

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            name: GaugeMetricFamily(f"hubbub_track_{name}", doc, labels=TRACK_LABELS)
            for name, doc in TRACK_FIELDS.items()
        }
        for world, stats in self.source():
            for pid, participant in (stats.get("per_participant") or {}).items():
                for track in participant.get("tracks", []):
                    labels = [world, str(pid), str(track.get("kind")), str(track.get("direction")),
                              str(track.get("mid"))]
                    for name, family in families.items():
                        value = track.get(name)
                        if isinstance(value, int | float):
                            family.add_metric(labels, float(value))
        yield from families.values()


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
        self.interest = Counter(
            "hubbub_interest",
            "Interest engine work, by kind: rows recomputed in full, rows updated incrementally, sources"
            " examined, cap restorations (searches, evictions, quick evictions), rows rewritten",
            ["world", "kind"],
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

    def watch_media(self, source: MediaStatsSource) -> None:
        """Export per-track stats from `source()` -> [(world, media.stats()), ...] on every scrape."""
        self.registry.register(_TrackCollector(source))

    def render(self) -> bytes:
        return generate_latest(self.registry)
