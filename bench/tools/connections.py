#!/usr/bin/env python3
"""Connections held open for the connections rows of bench/run.sh (bench/connections.sh).

    connections.py echo --port P
        A WebSocket echo server on 127.0.0.1:P (RFC 6455, text and binary frames, close), the
        upstream of the WebSockets. A request without `Upgrade` gets 200 "ok" (for readiness).

    connections.py hold --port P --cookie C [--path /bench.txt] [--ws-path /ws]
        Holds connections to 127.0.0.1:P, told what to do one command a line on stdin, and
        answers each with one JSON line on stdout:
          idle N   open N keep-alive connections, each with one GET of --path with the cookie,
                   answered 200 without `Connection: close`; then they stay open and silent
          ws N     open N WebSockets to --ws-path with the cookie (101, the accept key checked),
                   each echoing one message
          check    one more GET on every idle connection and one more echo on every WebSocket:
                   how many are still open and answer
          close    close everything (with a reset, so that no TIME_WAIT uses up local ports
                   between rounds)
        EOF ends it.

Only the standard library: a WebSocket client and server small enough to read, for the one
thing measured here (connections held open), not a general implementation.
"""

import argparse
import asyncio
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B85"
# How many connections are being opened at a time: the listen backlog (somaxconn, often 4096)
# is not the limit measured here.
OPEN_CONCURRENCY = 256
TIMEOUT = 30


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


async def read_head(reader):
    """The status or request line and the headers (lower-case names) of an HTTP message."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def read_frame(reader):
    """One WebSocket frame: (opcode, payload), unmasked."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if b1 & 0x80 else None
    payload = await reader.readexactly(n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
    return b0 & 0x0F, payload


def frame(opcode, payload, masked):
    """A final frame; a client's is masked (RFC 6455 5.3)."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


# ---------------------------------------------------------------------------------------------
# The echo server


async def serve_echo(reader, writer):
    try:
        _, headers = await read_head(reader)
        if headers.get("upgrade", "").lower() != "websocket":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
            return
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept_key(headers['sec-websocket-key'])}\r\n\r\n").encode())
        while True:
            opcode, payload = await read_frame(reader)
            if opcode == 0x8:
                writer.write(frame(0x8, payload[:2], masked=False))
                await writer.drain()
                return
            if opcode == 0x9:
                writer.write(frame(0xA, payload, masked=False))
            elif opcode in (0x1, 0x2):
                writer.write(frame(opcode, payload, masked=False))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, KeyError, ValueError):
        pass
    finally:
        writer.close()


async def echo_main(port):
    server = await asyncio.start_server(serve_echo, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


# ---------------------------------------------------------------------------------------------
# The holder


class Holder:
    def __init__(self, port, cookie, path, ws_path):
        self.port, self.cookie, self.path, self.ws_path = port, cookie, path, ws_path
        self.idle = []  # (reader, writer)
        self.ws = []
        self.sent = 0

    def request(self):
        return (f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Cookie: {self.cookie}\r\n\r\n").encode()

    async def get(self, reader, writer):
        """One GET on an open connection: true when it is answered 200 and the connection may
        be used again."""
        writer.write(self.request())
        await writer.drain()
        status, headers = await read_head(reader)
        if "transfer-encoding" in headers:
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            await reader.readexactly(int(headers.get("content-length", "0")))
        return status.split(" ")[1] == "200" and headers.get("connection", "").lower() != "close"

    async def echo(self, reader, writer):
        self.sent += 1
        message = f"hello {self.sent}".encode()
        writer.write(frame(0x1, message, masked=True))
        await writer.drain()
        opcode, payload = await read_frame(reader)
        return opcode == 0x1 and payload == message

    async def open_idle(self):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        if not await self.get(reader, writer):
            writer.close()
            raise ConnectionError("not answered 200 with keep-alive")
        return reader, writer

    async def open_ws(self):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {self.ws_path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                      f"Cookie: {self.cookie}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        await writer.drain()
        status, headers = await read_head(reader)
        if status.split(" ")[1] != "101" or headers.get("sec-websocket-accept") != accept_key(key):
            writer.close()
            raise ConnectionError(f"no upgrade: {status}")
        if not await self.echo(reader, writer):
            writer.close()
            raise ConnectionError("no echo")
        return reader, writer

    async def many(self, n, opener):
        """Opens n connections with opener, OPEN_CONCURRENCY at a time: (opened, failures)."""
        opened, failures = [], {}
        todo = iter(range(n))

        async def worker():
            for _ in todo:
                try:
                    opened.append(await asyncio.wait_for(opener(), TIMEOUT))
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError,
                        asyncio.LimitOverrunError, ValueError, IndexError) as e:
                    kind = type(e).__name__
                    failures[kind] = failures.get(kind, 0) + 1

        await asyncio.gather(*(worker() for _ in range(min(n, OPEN_CONCURRENCY))))
        return opened, failures

    async def alive(self, conns, probe):
        """How many of conns answer probe."""
        ok = 0
        sem = asyncio.Semaphore(OPEN_CONCURRENCY)

        async def one(c):
            nonlocal ok
            async with sem:
                try:
                    if await asyncio.wait_for(probe(*c), TIMEOUT):
                        ok += 1
                except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, IndexError):
                    pass

        await asyncio.gather(*(one(c) for c in conns))
        return ok

    async def command(self, line):
        words = line.split()
        start = time.monotonic()
        if words[0] in ("idle", "ws"):
            n = int(words[1])
            opened, failures = await self.many(n, self.open_idle if words[0] == "idle" else self.open_ws)
            (self.idle if words[0] == "idle" else self.ws).extend(opened)
            out = {"asked": n, "opened": len(opened), "failures": failures}
        elif words[0] == "check":
            out = {"idle_alive": await self.alive(self.idle, self.get), "idle_held": len(self.idle),
                   "ws_alive": await self.alive(self.ws, self.echo), "ws_held": len(self.ws)}
        elif words[0] == "close":
            out = {"closed": len(self.idle) + len(self.ws)}
            for _, writer in self.idle + self.ws:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.close()
            self.idle, self.ws = [], []
            await asyncio.sleep(0)
        else:
            out = {"error": f"unknown command {words[0]}"}
        out.update(command=words[0], seconds=round(time.monotonic() - start, 3))
        return out


async def hold_main(args):
    holder = Holder(args.port, args.cookie, args.path, args.ws_path)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while True:
        line = (await stdin.readline()).decode().strip()
        if not line:
            if stdin.at_eof():
                return
            continue
        print(json.dumps(await holder.command(line)), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    e = sub.add_parser("echo")
    e.add_argument("--port", type=int, required=True)
    h = sub.add_parser("hold")
    h.add_argument("--port", type=int, required=True)
    h.add_argument("--cookie", required=True)
    h.add_argument("--path", default="/bench.txt")
    h.add_argument("--ws-path", default="/ws")
    args = p.parse_args()
    try:
        asyncio.run(echo_main(args.port) if args.mode == "echo" else hold_main(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
