"""The Tansu launcher: a given or free port, ready when it returns, stopped by its own pid."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from shared.devstack.broker import TansuBroker
from shared.devstack.processes import free_port, pid_alive, port_open


async def test_the_broker_serves_on_the_given_port_and_stops_by_pid(tmp_path: Path) -> None:
    port = free_port()
    broker = TansuBroker(port=port, log_file=tmp_path / "logs" / "broker.log")
    assert broker.start() == f"127.0.0.1:{port}"
    pid = broker.pid
    assert pid is not None
    try:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            metadata = await producer.send_and_wait("launcher-check", b"hello")
        finally:
            await producer.stop()
        assert metadata.offset == 0

        with pytest.raises(RuntimeError, match="already in use"):
            TansuBroker(port=port).start()
    finally:
        broker.stop()
    assert not pid_alive(pid)
    assert not port_open("127.0.0.1", port)
    assert (tmp_path / "logs" / "broker.log").exists()
