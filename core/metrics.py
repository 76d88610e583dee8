"""Prometheus metrics, one registry per app so that several apps in one process do not collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

KNOWN_ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "crm_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "crm_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.graphql_errors = Counter(
            "crm_graphql_errors_total", "GraphQL errors by code", ["code"], registry=self.registry
        )
        self.jobs = Gauge("crm_jobs", "Jobs by status", ["status"], registry=self.registry)
        self.notifications = Gauge(
            "crm_notifications",
            "Notifications in the outbox by channel and status",
            ["channel", "status"],
            registry=self.registry,
        )

    def observe_request(self, method: str, path: str, status: int, seconds: float) -> None:
        route = path if path in KNOWN_ROUTES else ("/static" if path.startswith("/static/") else "other")
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self, job_counts: dict[str, int], notification_counts: dict[tuple[str, str], int]) -> bytes:
        for status, count in job_counts.items():
            self.jobs.labels(status).set(count)
        self.notifications.clear()  # a channel with no notifications left shows no series
        for (channel, status), count in notification_counts.items():
            self.notifications.labels(channel, status).set(count)
        return generate_latest(self.registry)
