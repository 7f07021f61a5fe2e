"""Headless Chromium (Debian's package) driven over the Chrome DevTools protocol.

Only what the page test needs: open a page with an Authorization header, evaluate
JavaScript, emulate a phone, take screenshots. The protocol runs over the
`websockets` library the OCPP gateway already uses; no browser is downloaded.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import websockets

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--remote-allow-origins=*"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.ws: Any = None
        self._dir = tempfile.mkdtemp(prefix="edge-chromium-")
        self._id = 0
        self._pending: dict[int, asyncio.Future] = {}
        self._reader: asyncio.Task | None = None

    async def start(self) -> "Browser":
        exe = find_chromium()
        assert exe, "chromium is not installed: `make test` installs Debian's package"
        self.proc = subprocess.Popen([exe, *FLAGS, "--user-data-dir=" + self._dir, "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self._dir) / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().count("\n") >= 1:
                break
            assert self.proc.poll() is None, "chromium exited at start (code %s)" % self.proc.returncode
            await asyncio.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        targets = await asyncio.to_thread(_get_json, "http://127.0.0.1:%d/json/list" % port)
        page = next(t for t in targets if t["type"] == "page")
        self.ws = await websockets.connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024)
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            fut = self._pending.pop(msg.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    async def send(self, method: str, **params: Any) -> dict:
        self._id += 1
        fut = asyncio.get_running_loop().create_future()
        self._pending[self._id] = fut
        await self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        msg = await asyncio.wait_for(fut, 30)
        assert "error" not in msg, (method, msg["error"])
        return msg.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        r = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    async def wait_for(self, expression: str, timeout_s: float = 20.0) -> Any:
        """Polls a JavaScript expression until it is truthy; returns its value (or the last one)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        value = None
        while loop.time() < end:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.2)
        return value

    async def screenshot(self, path: Path) -> None:
        r = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(r["data"]))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
        if self.proc is not None:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:   # loopback only: the DevTools port
        return json.loads(r.read())


def artifacts_dir() -> Path:
    return Path(os.environ.get("EDGE_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
