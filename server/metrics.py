"""Prometheus metrics on the app's own registry (never the global one)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.keys import METRICS_KEY

if TYPE_CHECKING:
    from server.domain.agent_payloads import StreamReading
    from server.domain.janus_events import JanusFigures
    from server.rtc.broadcasts import Broadcasts


class Metrics:
    """Every metric the server exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_seconds = Histogram(
            "hetang_http_request_seconds",
            "HTTP request latency by route",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.checkins = Counter(
            "hetang_checkins_total",
            "Check-in events answered, by result",
            ["status"],
            registry=self.registry,
        )
        self.stream_samples = Counter(
            "hetang_stream_samples_total",
            "New stream-health samples stored",
            registry=self.registry,
        )
        self.agent_queue_depth = Gauge(
            "hetang_agent_queue_depth",
            "Events waiting in an agent's outbox, as last reported",
            ["venue"],
            registry=self.registry,
        )
        self.venues_online = Gauge(
            "hetang_venues_online",
            "Venues whose agent sent a heartbeat recently",
            registry=self.registry,
        )
        self.sessions_by_state = Gauge(
            "hetang_sessions", "Training sessions by state", ["state"], registry=self.registry
        )
        self.venue_bitrate = Gauge(
            "hetang_venue_bitrate_kbps",
            "Received bitrate at a venue, as last reported",
            ["venue"],
            registry=self.registry,
        )
        self.venue_fps = Gauge(
            "hetang_venue_fps",
            "Decoded frames per second at a venue, as last reported",
            ["venue"],
            registry=self.registry,
        )
        self.venue_loss = Gauge(
            "hetang_venue_loss_percent",
            "Packet loss at a venue, as last reported",
            ["venue"],
            registry=self.registry,
        )

        self.janus_events = Counter(
            "hetang_janus_events_total",
            "Events Janus's event handler reported, by instance and type",
            ["emitter", "type"],
            registry=self.registry,
        )
        self.janus_hangups = Counter(
            "hetang_janus_hangups_total",
            "WebRTC connections Janus reported hung up, by instance",
            ["emitter"],
            registry=self.registry,
        )
        self.janus_venue_kbps = Gauge(
            "hetang_janus_venue_sent_kbps",
            "Video bitrate Janus sent a venue in its last second, as last reported",
            ["venue"],
            registry=self.registry,
        )
        self.janus_venue_lost = Gauge(
            "hetang_janus_venue_lost_packets",
            "Packets a venue reported lost to Janus (its running count), as last reported",
            ["venue"],
            registry=self.registry,
        )
        self.janus_publisher_kbps = Gauge(
            "hetang_janus_publisher_kbps",
            "Video bitrate Janus received from a session's publisher in its last second",
            ["session"],
            registry=self.registry,
        )

        self.background_rounds = Counter(
            "hetang_background_rounds_total",
            "Rounds of the background jobs this process ran (only the leading process runs them)",
            registry=self.registry,
        )
        self.background_leader = Gauge(
            "hetang_background_leader",
            "1 while this process leads the background jobs, else 0",
            registry=self.registry,
        )

    def record_stream(self, venue: str, reading: StreamReading) -> None:
        """A venue's latest stream-health sample (a figure not reported keeps its last value)."""
        for gauge, value in (
            (self.venue_bitrate, reading.bitrate_kbps),
            (self.venue_fps, reading.fps),
            (self.venue_loss, reading.loss_pct),
        ):
            if value is not None:
                gauge.labels(venue).set(value)

    def record_janus(self, figures: JanusFigures) -> None:
        """A batch of Janus's events (server.domain.janus_events)."""
        for (emitter, kind), count in figures.events.items():
            self.janus_events.labels(emitter, kind).inc(count)
        for emitter, count in figures.hangups.items():
            self.janus_hangups.labels(emitter).inc(count)
        for venue, kbps in figures.venue_kbps.items():
            self.janus_venue_kbps.labels(venue).set(kbps)
        for venue, lost in figures.venue_lost.items():
            self.janus_venue_lost.labels(venue).set(lost)
        for session, kbps in figures.publisher_kbps.items():
            self.janus_publisher_kbps.labels(session).set(kbps)

    def watch_relay(self, broadcasts: Broadcasts) -> None:
        """Export the relay's figures, read when scraped."""
        self.registry.register(RelayCollector(broadcasts))


class RelayCollector(Collector):
    """Subscribers per session and the relay's running totals."""

    def __init__(self, broadcasts: Broadcasts) -> None:
        self.broadcasts = broadcasts

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        subscribers = GaugeMetricFamily(
            "hetang_relay_subscribers", "Venues receiving a session's broadcast", labels=["session"]
        )
        for public_id, count in sorted(self.broadcasts.subscriber_counts().items()):
            subscribers.add_metric([public_id], count)
        yield subscribers
        counters = self.broadcasts.counters
        for name, text, value in (
            (
                "hetang_relay_packets_forwarded",
                "Encoded frames handed to subscribers",
                counters.frames_forwarded,
            ),
            (
                "hetang_relay_bytes_forwarded",
                "Encoded bytes handed to subscribers",
                counters.bytes_forwarded,
            ),
            (
                "hetang_relay_plis_forwarded",
                "Keyframe requests (PLI) sent to publishers",
                counters.keyframe_requests,
            ),
            (
                "hetang_relay_resyncs",
                "Slow subscribers flushed to the next keyframe",
                counters.resyncs,
            ),
        ):
            yield CounterMetricFamily(name, text, value=value)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request under its route's name (unknown routes share one label)."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = request.match_info.route.name if request.match_info.http_exception is None else None
        request.app[METRICS_KEY].http_seconds.labels(
            request.method, route or "unmatched", str(status)
        ).observe(time.perf_counter() - started)
