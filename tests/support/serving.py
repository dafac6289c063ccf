"""An aiohttp app served on a loopback port from a thread of the test process.

Synchronous tests (requests, Playwright, hypothesis) talk to the project's real apps over real HTTP this way:
the app starts in milliseconds, where a process would take seconds, and the test can still reach into it.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from efedllm.http import AppRunner

HOST = "127.0.0.1"


class ServedApp:
    """``app`` on 127.0.0.1 (a port the system picks), run by an event loop of its own in a daemon thread.

    A context manager: ``url`` is the base URL (no trailing slash), ``port`` the port, ``run(coroutine)`` runs a
    coroutine on the app's loop and returns its result.
    """

    def __init__(self, app: web.Application, *, timeout: float = 30):
        self.app, self.timeout = app, timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="served-app", daemon=True)
        self.runner = AppRunner(app, access_log=None)  # the services' own runner: JSON even for parser errors
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> ServedApp:
        self.thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.run(self.runner.cleanup())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            if not self.thread.is_alive():
                self.loop.close()

    def run(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout or self.timeout)

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, HOST, 0).start()
        self.port = self.runner.addresses[0][1]
