"""The HTTP API under load: latency of one evaluate and one explain, and explained
evaluations per second with concurrent clients.

    python benchmarks/serve.py [--requests 200] [--clients 8]

Starts `rulelang serve` in its own process on a free local port, then sends the README's
example records (3 clinics, 3 persons, 5 visits) as a tool would:
  1. POST /rulebooks/stockholm/hlv-2021/explain (avdrag of visit V1), one request at a time;
  2. POST /rulebooks/stockholm/hlv-2021/evaluate (every output of every record), likewise;
  3. the explain request from --clients threads at once, for throughput.
Prints p50 and p99 latency (ms) of 1 and 2, and requests per second of 3.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BOOK = "stockholm/hlv-2021"


def percentile(samples: list, share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "rulelang", "serve", "--port", str(port)], cwd=ROOT,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(base + "/rulebooks", timeout=5)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        records = json.loads((ROOT / "examples" / "stockholm-2021.json").read_text(encoding="utf-8"))
        explain = {"data": records, "output": "avdrag", "record": "V1"}
        evaluate = {"data": records, "on": "2021-09-30"}
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(10):  # warm-up: the rulebook loaded, the code paths imported
                client.post(f"/rulebooks/{BOOK}/explain", json=explain).raise_for_status()
                client.post(f"/rulebooks/{BOOK}/evaluate", json=evaluate).raise_for_status()
            for name, path, body in (("explain one visit", "explain", explain),
                                     ("evaluate every record", "evaluate", evaluate)):
                samples = []
                for _ in range(args.requests):
                    started = time.perf_counter()
                    client.post(f"/rulebooks/{BOOK}/{path}", json=body).raise_for_status()
                    samples.append((time.perf_counter() - started) * 1000)
                print(f"{name:28s} p50 {statistics.median(samples):7.1f} ms   p99 {percentile(samples, 0.99):7.1f} ms"
                      f"   ({args.requests} requests, one at a time)")
        done = []

        def client_loop(count: int) -> None:
            with httpx.Client(base_url=base, timeout=60) as client:
                for _ in range(count):
                    client.post(f"/rulebooks/{BOOK}/explain", json=explain).raise_for_status()
                    done.append(1)

        per_client = max(1, args.requests // args.clients)
        threads = [threading.Thread(target=client_loop, args=(per_client,)) for _ in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        print(f"explained evaluations/s      {len(done) / elapsed:7.1f}   ({args.clients} clients, {len(done)} requests)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
