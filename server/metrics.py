"""Prometheus metrics on the app's own registry (never the global one)."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from server.keys import METRICS_KEY


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
