"""``make bench``: every scenario, one after the other, each in its own process; then the summary.

    python -m bench.run [--postgres] [--quick] [--profile] [--only e2e,floor]

Writes ``bench/results/<database>/<scenario>.json`` per scenario, then
``latest.json`` and ``latest.md`` (``latest-postgresql.*`` with ``--postgres``)
with every headline figure, its target, and the end-to-end throughput as a
ratio of the floor's (both measured in this run; the floor has no database
and is run again with each).
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.lib import results
from bench.lib.options import database_name, parser
from bench.lib.phase import load_average
from bench.lib.results import Headline, headline

SCENARIOS = ["floor", "e2e", "ingest", "fanout", "isolation", "email", "scheduler"]


def derived(database: str) -> list[Headline]:
    floor, e2e = results.load("floor", database), results.load("e2e", database)
    if not floor or not e2e:
        return []
    ours = e2e["figures"]["max"]["sustained_rate"]
    theirs = floor["figures"]["max"]["sustained_rate"]
    ratio = round(ours / theirs, 2) if theirs else 0.0
    return [
        headline(
            f"end-to-end / floor, highest rate held 60 s ({database})",
            ratio,
            "x",
            ">= 0.5",
            ratio >= 0.5 and not e2e.get("void"),
        )
    ]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--only", default="", help="comma-separated scenarios (default: all)")
    args = p.parse_args()
    chosen = [s for s in args.only.split(",") if s] or SCENARIOS
    flags = [f for f, on in (("--postgres", args.postgres), ("--quick", args.quick)) if on]
    if args.profile:
        flags.append("--profile")
    started = time.time()
    failed = []
    for name in chosen:
        began = time.time()
        print(f"=== {name} (load average {load_average()})", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *flags])
        print(f"=== {name}: exit {code} after {time.time() - began:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    database = database_name(args.postgres)
    latest, table = results.merge(SCENARIOS, database=database, extra=derived(database))
    print(table.read_text())
    print(f"all scenarios in {time.time() - started:.0f} s; wrote {latest} and {table}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
