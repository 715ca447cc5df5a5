"""The HTTP API under load: latency of one evaluate and one explain, and explained
evaluations per second with concurrent clients.

    python benchmarks/serve.py [--requests 1000] [--clients 8] [--seconds 10] [-- SERVE OPTIONS]

Starts `rulelang serve` in its own process on a free local port (options after `--` go to
it, such as `--workers 2`), then sends the README's example records (3 clinics, 3 persons,
2 listings, 5 visits) as a tool would:
  1. POST /rulebooks/stockholm/hlv-2021/explain (avdrag of visit V1), one request at a time;
  2. POST /rulebooks/stockholm/hlv-2021/evaluate (every output of every record), likewise;
  3. the explain request from --clients connections at once for --seconds, for throughput.
Each request names a different visit date (the month's days in turn), so no two bodies in
a row are the same; the server keeps no cache of answers: each request is read, checked and
explained. Prints p50 and p99 latency (ms) of 1 and 2, and explained evaluations a second of 3.

The client is a few lines of asyncio over HTTP/1.1 keep-alive connections, not an HTTP
library: on a 2-core machine the client shares the cores with the server, and a heavy
client would measure itself.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = "stockholm/hlv-2021"


def percentile(samples: list, share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def bodies(kind: str) -> list:
    """30 request bodies of one kind, one per day of September 2021 (visit V1's date)."""
    records = json.loads((ROOT / "examples" / "stockholm-2021.json").read_text(encoding="utf-8"))
    made = []
    for day in range(1, 31):
        data = copy.deepcopy(records)
        data["visits"][0]["date"] = f"2021-09-{day:02d}"
        body = ({"data": data, "output": "avdrag", "record": "V1"} if kind == "explain"
                else {"data": data, "on": "2021-09-30"})
        made.append(json.dumps(body).encode("utf-8"))
    return made


def request_bytes(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("ascii") + body


async def answer(reader: asyncio.StreamReader) -> tuple:
    """(status, body) of one HTTP/1.1 response with a Content-Length."""
    status = int((await reader.readline()).split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def one_at_a_time(port: int, requests: list, count: int) -> list:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    samples = []
    for i in range(count):
        started = time.perf_counter()
        writer.write(requests[i % len(requests)])
        status, body = await answer(reader)
        samples.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"status {status}: {body[:300]!r}")
    writer.close()
    return samples


async def throughput(port: int, requests: list, clients: int, seconds: float) -> tuple:
    done = []
    stop = time.perf_counter() + seconds

    async def client(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = offset
        while time.perf_counter() < stop:
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
            status, body = await answer(reader)
            if status != 200:
                raise SystemExit(f"status {status}: {body[:300]!r}")
            done.append((time.perf_counter() - started) * 1000)
            i += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return len(done), time.perf_counter() - started, done


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("serve", nargs="*", help="options for rulelang serve (after --)")
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "rulelang", "serve", "--port", str(port), *args.serve],
                              cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        explain = [request_bytes(f"/rulebooks/{BOOK}/explain", b) for b in bodies("explain")]
        evaluate = [request_bytes(f"/rulebooks/{BOOK}/evaluate", b) for b in bodies("evaluate")]
        asyncio.run(one_at_a_time(port, explain + evaluate, 200))  # warm-up: rulebook loaded, paths imported
        print(f"rulelang serve {' '.join(args.serve)}".strip())
        for name, requests in (("explain one visit", explain), ("evaluate every record", evaluate)):
            samples = asyncio.run(one_at_a_time(port, requests, args.requests))
            print(f"  {name:26s} p50 {statistics.median(samples):6.2f} ms   p99 {percentile(samples, 0.99):6.2f} ms"
                  f"   ({args.requests} requests, one at a time)")
        count, elapsed, latencies = asyncio.run(throughput(port, explain, args.clients, args.seconds))
        print(f"  explained evaluations/s    {count / elapsed:7.1f}   ({args.clients} clients for {elapsed:.1f} s; "
              f"p50 {statistics.median(latencies):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms)")
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
