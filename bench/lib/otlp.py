"""An OTLP/HTTP trace sink in a process of its own, for the e2e scenario with tracing on.

It answers every export as a collector would (200, an empty protobuf
``ExportTraceServiceResponse``) and counts the spans it got, decoding each
export with ``opentelemetry-proto``; ``GET /__stats`` tells the counts. Its
CPU is its own process's, so it does not count against the services.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

import httpx
import orjson

from shared.devstack.processes import free_port, wait_until


def _serve(port: int) -> None:
    import uvicorn
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    stats = {"exports": 0, "spans": 0, "bytes": 0, "undecodable": 0}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/__stats":
            answer, content_type = orjson.dumps(stats), b"application/json"
        else:
            export = ExportTraceServiceRequest()
            try:
                export.ParseFromString(body)
            except Exception:
                stats["undecodable"] += 1
            stats["exports"] += 1
            stats["bytes"] += len(body)
            stats["spans"] += sum(
                len(scope_spans.spans)
                for resource_spans in export.resource_spans
                for scope_spans in resource_spans.scope_spans
            )
            answer, content_type = b"", b"application/x-protobuf"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class OtlpSink:
    def __init__(self) -> None:
        self.port = free_port()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(self.port,), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._process.pid is not None, "not started"
        return self._process.pid

    def env(self) -> dict[str, str]:
        """What the services need to export every trace here (100% sampling)."""
        return {"OTEL_EXPORTER_OTLP_ENDPOINT": self.url, "OTEL_TRACES_SAMPLER": "always_on"}

    def start(self) -> None:
        self._process.start()
        wait_until(self._up, timeout=20, what="OTLP sink")

    def _up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/__stats", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stats(self) -> dict[str, int]:
        with httpx.Client(timeout=30, trust_env=False) as client:
            found: dict[str, int] = client.get(f"{self.url}/__stats").json()
        return found

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
