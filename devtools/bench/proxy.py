"""`python -m devtools.bench.proxy --port P --target T`: a counting HTTP/1.1 proxy for Azurite's table
endpoint, so the bench can report Table round trips per event from a counter.

A proxy rather than an azure-core policy inside the dev host: it counts every request that reaches the
table service, whatever client, code path or batching the code under test uses, and needs nothing
from that code (no hook to keep when the queue side is rewritten). Its price is one more loopback hop
per table request, in a process of its own whose CPU the bench reports beside the others.

Requests are parsed only as far as needed to find where each ends (headers, then Content-Length or
chunked body); responses are relayed as raw bytes. `GET /_counts` answers the counts by `METHOD table`
(`POST $batch` for a transaction: one round trip, whatever it holds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections import Counter

_LIMIT = 1 << 20  # longest header block accepted
_CHUNK = 1 << 16


class CountingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.counts: Counter[str] = Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        if head.startswith(b"GET /_counts "):
            await self._answer_counts(writer)
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", self.target_port, limit=_LIMIT
        )
        back = asyncio.create_task(_pipe(upstream_reader, writer))
        try:
            await self._relay_requests(head, reader, upstream_writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            upstream_writer.close()
            with contextlib.suppress(ConnectionError):
                await back

    async def _relay_requests(
        self, head: bytes, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter
    ) -> None:
        """Forward requests one after the other on a kept-alive connection, counting each."""
        while True:
            self.counts[_kind(head)] += 1
            upstream.write(head)
            headers = _headers(head)
            if "chunked" in headers.get("transfer-encoding", "").lower():
                await _copy_chunked(reader, upstream)
            else:
                await _copy_exactly(reader, upstream, int(headers.get("content-length", "0")))
            await upstream.drain()
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed the connection

    async def _answer_counts(self, writer: asyncio.StreamWriter) -> None:
        body = json.dumps(dict(self.counts)).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


def _kind(head: bytes) -> str:
    """`METHOD table` from the request line: /devstoreaccount1/bridgedeliveries(PartitionKey=...)."""
    method, target = head.split(b" ", 2)[:2]
    path = target.decode("latin-1").split("?", 1)[0]
    segments = [s for s in path.split("/") if s]
    table = segments[1].split("(", 1)[0] if len(segments) > 1 else "/"
    return f"{method.decode('latin-1')} {table}"


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


async def _copy_exactly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, length: int) -> None:
    while length > 0:
        data = await reader.readexactly(min(length, _CHUNK))
        writer.write(data)
        length -= len(data)


async def _copy_chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        writer.write(size_line)
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            writer.write(await reader.readuntil(b"\r\n"))  # no trailers from the SDKs: the final CRLF
            return
        await _copy_exactly(reader, writer, size + 2)  # the chunk and its CRLF


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def serve(port: int, target_port: int) -> None:
    proxy = CountingProxy(target_port)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", port, limit=_LIMIT)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.proxy", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--target", type=int, required=True, help="Azurite's table port")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.target))


if __name__ == "__main__":
    main()
