"""Command-line options every scenario takes, and the loop-policy choice for the generator."""

from __future__ import annotations

import argparse
import asyncio

import uvloop


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--postgres", action="store_true", help="run the services on PostgreSQL")
    p.add_argument(
        "--quick",
        action="store_true",
        help="shorter phases, for iterating (figures are not comparable with a full run)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the services with py-spy into bench/results/profiles/",
    )
    p.add_argument(
        "--cpu-only",
        action="store_true",
        help="only the warm-up and the CPU-per-event phase; prints, writes no results",
    )
    return p


def database_name(postgres: bool) -> str:
    return "postgresql" if postgres else "sqlite"


def install_loop() -> None:
    """The generator runs on uvloop too, so it costs the shared cores as little as possible."""
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
