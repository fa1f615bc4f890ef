"""``status``: readiness, outbox backlog, consumer lag and scheduler lag, from each replica.

Read from ``/metrics`` and ``/readyz`` of every URL given per service (comma
separated): each replica reports the lag of the partitions it holds, so the
union over replicas is the group's lag; backlog and scheduler lag describe
the service's database, so the replicas agree and the largest is shown.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import typer
from prometheus_client.parser import text_string_to_metric_families

from services.cli.app import app, state
from services.cli.context import fails_cleanly
from services.cli.output import emit, table
from services.cli.settings import SERVICES, CliSettings, ServiceName


@dataclass
class ServiceStatus:
    service: str
    replicas: dict[str, str] = field(default_factory=dict)
    outbox_backlog: float | None = None
    outbox_oldest_age_seconds: float | None = None
    consumer_lag: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    scheduler_lag_seconds: dict[str, float] = field(default_factory=dict)
    dead_lettered: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        lag = {topic: dict(parts) for topic, parts in self.consumer_lag.items()}
        return {
            "service": self.service,
            "replicas": self.replicas,
            "outbox_backlog": self.outbox_backlog,
            "outbox_oldest_age_seconds": self.outbox_oldest_age_seconds,
            "consumer_lag": lag,
            "consumer_lag_total": sum(sum(parts.values()) for parts in lag.values()),
            "scheduler_lag_seconds": self.scheduler_lag_seconds,
            "dead_lettered_total": self.dead_lettered,
        }


def _larger(current: float | None, value: float) -> float:
    return value if current is None else max(current, value)


def read_replica(status: ServiceStatus, url: str, http: httpx.Client) -> None:
    """Fold one replica's readiness and metrics into the service's status."""
    try:
        ready = http.get(f"{url}/readyz")
        status.replicas[url] = (
            "ready" if ready.status_code == 200 else f"not ready ({ready.status_code})"
        )
        text = http.get(f"{url}/metrics").text
    except httpx.HTTPError as error:
        status.replicas[url] = f"unreachable ({type(error).__name__})"
        return
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("service") != status.service:
                continue
            name, value = sample.name, sample.value
            if name == "followthrough_outbox_backlog":
                status.outbox_backlog = _larger(status.outbox_backlog, value)
            elif name == "followthrough_outbox_oldest_age_seconds":
                status.outbox_oldest_age_seconds = _larger(status.outbox_oldest_age_seconds, value)
            elif name == "followthrough_consumer_lag":
                # Groups that read one topic (intake, erasure): the one furthest behind.
                parts = status.consumer_lag[labels["topic"]]
                parts[labels["partition"]] = _larger(parts.get(labels["partition"]), value)
            elif name == "followthrough_scheduler_lag_seconds":
                kind = labels["kind"]
                status.scheduler_lag_seconds[kind] = _larger(
                    status.scheduler_lag_seconds.get(kind), value
                )
            elif name == "followthrough_dead_lettered_total":
                key = f"{labels['topic']} ({labels['reason']})"
                status.dead_lettered[key] = status.dead_lettered.get(key, 0.0) + value


def collect(settings: CliSettings, services: list[ServiceName]) -> list[ServiceStatus]:
    found = []
    with httpx.Client(timeout=settings.http_timeout_seconds) as http:
        for service in services:
            status = ServiceStatus(service)
            for url in settings.urls(service):
                read_replica(status, url, http)
            found.append(status)
    return found


@app.command()
@fails_cleanly
def status(
    ctx: typer.Context,
    service: Annotated[
        list[str] | None,
        typer.Option(help="Only this service (repeatable): goals, sessions, notifications."),
    ] = None,
) -> None:
    """Readiness, outbox backlog and age, consumer lag per partition, scheduler lag."""
    cli = state(ctx)
    chosen = [s for s in SERVICES if not service or s in service]
    unknown = set(service or ()) - set(SERVICES)
    if unknown:
        raise typer.BadParameter(f"unknown service {sorted(unknown)[0]}", param_hint="--service")
    statuses = collect(cli.settings, chosen)
    if cli.as_json:
        emit([s.as_dict() for s in statuses], as_json=True)
        return
    overview = [
        {
            "service": s.service,
            "replicas": ", ".join(f"{url} {state_}" for url, state_ in s.replicas.items()),
            "outbox_backlog": s.outbox_backlog,
            "oldest_unsent_s": s.outbox_oldest_age_seconds,
            "consumer_lag": s.as_dict()["consumer_lag_total"] if s.consumer_lag else None,
            "scheduler_lag_s": max(s.scheduler_lag_seconds.values(), default=None),
        }
        for s in statuses
    ]
    typer.echo(
        table(
            overview,
            [
                "service",
                "outbox_backlog",
                "oldest_unsent_s",
                "consumer_lag",
                "scheduler_lag_s",
                "replicas",
            ],
        )
    )
    partitions = [
        {"service": s.service, "topic": topic, "partition": part, "lag": lag}
        for s in statuses
        for topic, parts in sorted(s.consumer_lag.items())
        for part, lag in sorted(parts.items(), key=lambda item: int(item[0]))
    ]
    if partitions:
        typer.echo("\nconsumer lag by partition")
        typer.echo(table(partitions, ["service", "topic", "partition", "lag"]))
    timers = [
        {"service": s.service, "kind": kind, "lag_s": lag}
        for s in statuses
        for kind, lag in sorted(s.scheduler_lag_seconds.items())
    ]
    if timers:
        typer.echo("\nscheduler lag (now minus the oldest due, unfired timer)")
        typer.echo(table(timers, ["service", "kind", "lag_s"]))
    letters = [
        {"service": s.service, "source": source, "dead_lettered": count}
        for s in statuses
        for source, count in sorted(s.dead_lettered.items())
        if count
    ]
    if letters:
        typer.echo("\ndead-lettered since each replica started")
        typer.echo(table(letters, ["service", "source", "dead_lettered"]))
