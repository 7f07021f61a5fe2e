"""Stands in for an MQTT 3.1.1-only broker in front of the real Mosquitto.

Mosquitto 2 always speaks MQTT 5, so the fallback needs a broker that does not: this
proxy answers an MQTT 5 CONNECT the way a 3.1.1 broker must (CONNACK return code 1,
"unacceptable protocol version", then close) and pipes any other connection through.
"""
from __future__ import annotations

import asyncio


class DowngradeProxy:
    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.refused_v5 = 0
        self.passed = 0
        self._server = None
        self.port = 0

    async def start(self) -> "DowngradeProxy":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readexactly(1)
            length, length_bytes, shift = 0, b"", 0
            while True:
                b = await reader.readexactly(1)
                length_bytes += b
                length |= (b[0] & 0x7F) << shift
                shift += 7
                if not b[0] & 0x80:
                    break
            body = await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        # Variable header: protocol name (2-byte length + "MQTT"), then the level byte.
        name_len = int.from_bytes(body[0:2], "big")
        level = body[2 + name_len]
        if head[0] & 0xF0 == 0x10 and level == 5:
            self.refused_v5 += 1
            writer.write(b"\x20\x02\x00\x01")
            await writer.drain()
            writer.close()
            return
        self.passed += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        up_writer.write(head + length_bytes + body)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
