"""Holds N Server-Sent Event streams open against the server and measures, for every
`incident.created` event each stream receives, the time from the event's `occurred_at` (taken
by the server inside the writing request, before its commit) to its arrival: an upper bound of
commit-to-client latency. Plain asyncio, HTTP/1.1 with chunked decoding, no dependencies.

Usage: python3 stream_clients.py HOST PORT TOKEN CLIENTS SECONDS [TYPES]
(TYPES: the streams' `types` filter, default incident.created)
Prints one JSON line: clients connected, events received, p50/p99/max latency in ms, and the
streams that broke.
"""

import asyncio
import collections
import json
import sys
import time
from datetime import datetime


def parse_time(text):
    # 2026-12-06T19:11:38.014311Z
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Client:
    def __init__(self, latencies):
        self.latencies = latencies
        self.pending = b""
        self.text = b""
        self.connected = False
        self.broken = False
        self.failure = None

    def feed_frames(self):
        while True:
            end = self.text.find(b"\n\n")
            if end < 0:
                return
            block, self.text = self.text[:end], self.text[end + 2:]
            for line in block.split(b"\n"):
                if line.startswith(b"data: "):
                    now = time.time()
                    data = json.loads(line[6:])
                    if data.get("type") == "incident.created":
                        self.latencies.append((now - parse_time(data["occurred_at"])) * 1000)

    async def run(self, host, port, token, types, stop):
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                (
                    f"GET /api/v1/stream?types={types} HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
                ).encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                self.broken = True
                self.failure = head.split(b"\r\n")[0].decode()
                return
            self.connected = True
            while not stop.is_set():
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.strip(), 16)
                if size == 0:
                    self.broken = not stop.is_set()
                    return
                chunk = await reader.readexactly(size + 2)
                self.text += chunk[:-2]
                self.feed_frames()
        except (OSError, asyncio.IncompleteReadError, ValueError) as err:
            self.broken = not stop.is_set()
            self.failure = type(err).__name__


async def main():
    host, port, token, clients, seconds = sys.argv[1:6]
    types = sys.argv[6] if len(sys.argv) > 6 else "incident.created"
    clients, seconds = int(clients), float(seconds)
    latencies = []
    stop = asyncio.Event()
    population = [Client(latencies) for _ in range(clients)]
    tasks = []
    for client in population:
        tasks.append(asyncio.create_task(client.run(host, int(port), token, types, stop)))
        await asyncio.sleep(0.002)  # ~500 connections a second
    # Tell the caller the streams are open.
    print("open", flush=True)
    await asyncio.sleep(seconds)
    stop.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()

    def pct(p):
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))], 1) if latencies else None

    print(
        json.dumps(
            {
                "clients": clients,
                "connected": sum(c.connected for c in population),
                "broken": sum(c.broken for c in population),
                "failures": dict(collections.Counter(c.failure for c in population if c.failure)),
                "events": len(latencies),
                "p50_ms": pct(0.50),
                "p99_ms": pct(0.99),
                "max_ms": round(latencies[-1], 1) if latencies else None,
            }
        ),
        flush=True,
    )


asyncio.run(main())
