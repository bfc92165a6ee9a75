#!/usr/bin/env python3
"""An open-loop HTTP load generator (aiohttp): evenly spaced requests at a fixed rate.

Request k is due at ``start + k / rate`` whatever happened to the ones before it
(open loop), goes out on whichever of the ``--connections`` keep-alive connections
is free, and its latency is measured from the time it was due, so a stall shows
in the figures instead of slowing the load down (no coordinated omission).
``hey -q`` ticks every worker at once (bursts of 64 every 62.5 ms); this spreads
them out.

    .venv/bin/python bench/loadgen.py URL --rate 1000 --connections 64 --seconds 10 -H 'Authorization: Bearer T'

Prints one JSON object: sent, ok, errors, achieved rate, p50/p90/p99/max in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp


async def run(url: str, rate: float, connections: int, seconds: float, headers: dict[str, str]) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        # open the connections first, so the run measures reads, not handshakes
        await asyncio.gather(*(session.get(url) for _ in range(connections)))

        async def one(due: float) -> None:
            nonlocal errors
            try:
                async with session.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                        return
            except aiohttp.ClientError:
                errors += 1
                return
            latencies.append(time.perf_counter() - due)

        tasks = []
        start = time.perf_counter() + 0.05
        total = int(rate * seconds)
        for k in range(total):
            due = start + k / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "sent": float(total),
        "ok": float(len(latencies)),
        "errors": float(errors),
        "rate": total / elapsed,
        "p50": pct(50),
        "p90": pct(90),
        "p99": pct(99),
        "max": latencies[-1] * 1000 if latencies else float("nan"),
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("-H", dest="headers", action="append", default=[], metavar="NAME: VALUE")
    a = ap.parse_args()
    headers = dict(h.split(": ", 1) for h in a.headers)
    print(json.dumps(asyncio.run(run(a.url, a.rate, a.connections, a.seconds, headers))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
