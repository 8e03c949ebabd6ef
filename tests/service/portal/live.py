"""A real HTTP server around an app, in a thread, on a free loopback port (uvicorn, like `enclave serve`)."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from service.proxies import UVICORN_OPTIONS


class LiveServer:
    def __init__(self, app: FastAPI) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **UVICORN_OPTIONS)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="live-server", daemon=True)
        self.url = ""

    def start(self, timeout: float = 60) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "the live server did not start"
            time.sleep(0.05)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(30)
