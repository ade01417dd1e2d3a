"""A small fixed-rate (open-loop, wrk2-style) HTTP/1.1 load generator on asyncio streams.

Run in its own process: `python -m bench.loadgen --port P --path /v1/chat --rate 50 --duration 10
--bodies FILE` prints one JSON object. Requests are scheduled at start + i/rate whatever the
server does; the latency of each is measured from its *scheduled* time, so queueing behind a slow
server counts (no coordinated omission). Loopback only: the host is always 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


def _request(port: int, method: str, path: str, body: bytes | None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: keep-alive\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


async def run(port: int, path: str, rate: float, duration: float, bodies: list[bytes], conns: int,
              timeout: float) -> dict[str, Any]:
    method = "POST" if bodies else "GET"
    queue: asyncio.Queue[tuple[float, bytes | None] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    total = int(rate * duration)

    async def worker() -> None:
        nonlocal errors
        reader = writer = None
        while True:
            item = await queue.get()
            if item is None:
                break
            scheduled, body = item
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                writer.write(_request(port, method, path, body))
                status = await asyncio.wait_for(_read_response(reader), timeout)  # type: ignore[arg-type]
                latencies.append(time.perf_counter() - scheduled)
                statuses[status] = statuses.get(status, 0) + 1
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(conns)]
    start = time.perf_counter() + 0.1
    max_lag = 0.0
    for i in range(total):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            max_lag = max(max_lag, -delay)
        queue.put_nowait((target, bodies[i % len(bodies)] if bodies else None))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, max(0, int(round(p / 100 * len(latencies) + 0.5)) - 1))]
                     * 1000, 3)

    return {"target_rate": rate, "scheduled": total, "completed": len(latencies), "errors": errors,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "achieved_rps": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": pct(100),
            "generator_max_lag_ms": round(max_lag * 1000, 2), "connections": conns}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/v1/chat")
    ap.add_argument("--rate", type=float, required=True, help="requests per second")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--bodies", type=Path, help="JSON bodies, one a line (POST); absent: GET")
    ap.add_argument("--offset", type=int, default=0, help="first body to send (0-based)")
    ap.add_argument("--connections", type=int, default=64, help="most requests in flight")
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args(argv)
    bodies = ([ln.encode() for ln in a.bodies.read_text(encoding="utf-8").splitlines() if ln.strip()]
              if a.bodies else [])
    if bodies:
        k = a.offset % len(bodies)
        bodies = bodies[k:] + bodies[:k]
    try:
        from uvloop import run as runner
    except ImportError:
        runner = asyncio.run
    out = runner(run(a.port, a.path, a.rate, a.duration, bodies, a.connections, a.timeout))
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
