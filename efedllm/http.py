"""What every HTTP service of the project (servers, the weight source, the dashboard, the verifiers' inboxes, the
OpenAI-compatible API) answers on an error: a JSON body ``{"error": ..., "status": ...}`` with a 4xx status for
anything the client can fix, 5xx only for a bug, which is logged while the service keeps serving everyone else.

Two layers: ``json_errors``, a middleware, for what reaches a handler; and ``AppRunner``, which every service runs
its app with, for what aiohttp's HTTP parser refuses before any handler runs (an over-long request line or header,
bad chunking, an unknown method, a malformed Content-Length, a body whose Content-Encoding does not decode): aiohttp
answers those in text/plain and logs each as an error with a traceback; here they are JSON 4xx answers and a debug
line. A client that drops its connection is not an error either.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Mapping
from http import HTTPStatus

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import HttpProcessingError


def json_error(status: int, message: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


def body_error(exc: BaseException) -> str:
    """What went wrong reading a body, in one line (aiohttp's message, else its cause's)."""
    text = getattr(exc, "message", "") or str(exc.__cause__ or exc) or type(exc).__name__
    return text.splitlines()[0] if text.strip() else "malformed body"


BODY_TIMEOUT_S = 30.0
"""Seconds a request's body may take to arrive once its headers have (a stalled body holds a connection)."""


async def read_body(request: web.Request, *, timeout: float = BODY_TIMEOUT_S) -> bytes:
    """The request's body; 408 (JSON, through ``json_errors``) when it has not all arrived within ``timeout``."""
    try:
        return await asyncio.wait_for(request.read(), timeout)
    except TimeoutError:
        raise web.HTTPRequestTimeout(text=f"the request body did not arrive within {timeout:g} s") from None


def too_large(request: web.Request) -> bool:
    """A declared Content-Length over the app's body limit: refused at once, before a byte of the body is read
    (aiohttp alone would read up to the limit first)."""
    return request.content_length is not None and request.content_length > request.client_max_size


def json_errors(
    log: logging.Logger,
    client_errors: Mapping[type[Exception], Callable[[Exception], int]] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
):
    """An aiohttp middleware: exceptions of the types in ``client_errors`` become JSON errors with the status
    their function gives; aiohttp's own HTTP errors keep their status; anything else is a logged 500."""

    client_errors = dict(client_errors or {})

    @web.middleware
    async def middleware(request: web.Request, handler):
        if too_large(request):
            return json_error(413, f"the body may hold at most {request.client_max_size} bytes", headers=headers)
        try:
            return await handler(request)
        except tuple(client_errors) as exc:
            status = next(f(exc) for kind, f in client_errors.items() if isinstance(exc, kind))
            return json_error(status, str(exc), headers=headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            text = exc.reason if exc.text is None or exc.text.startswith(str(exc.status)) else exc.text
            return json_error(exc.status, text, headers=headers)
        except web_protocol.RequestPayloadError as exc:  # bad chunking or Content-Encoding found while reading
            return json_error(400, f"the request body cannot be read: {body_error(exc)}", headers=headers)
        except ConnectionResetError:  # the client went away mid-request: nothing to answer, nothing wrong here
            raise
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return json_error(500, "internal server error", headers=headers)

    return middleware


CLIENT_FAULTS = (web_protocol.RequestPayloadError, HttpProcessingError, ConnectionError)
"""What a client causes on its own connection (a body that does not decode, a connection it dropped): logged at
debug level, never as a server error."""


class JsonRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler, answering what its parser refuses as a JSON error."""

    def log_exception(self, *args, **kwargs) -> None:
        exc = kwargs.get("exc_info")
        exc = exc if isinstance(exc, BaseException) else sys.exc_info()[1]
        if isinstance(exc, CLIENT_FAULTS):
            self.logger.debug("a client's fault on its connection: %r", exc)
            return
        super().log_exception(*args, **kwargs)

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None, message: str | None = None):
        if isinstance(exc, CLIENT_FAULTS) and status >= 500:
            status = 400
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        else:
            self.logger.debug("refused a malformed request from %s: %s", request.remote, message or exc)
        if request.writer.output_size > 0:  # an answer is under way: the connection is broken, as aiohttp does
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        text = (message or HTTPStatus(status).phrase).split("\n")[0][:500]
        response = web.json_response({"error": text, "status": status}, status=status)
        response.force_close()
        return response


class _JsonServer(web.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return JsonRequestHandler(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer parser-level errors in JSON (``JsonRequestHandler``)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonServer  # aiohttp builds the Server; only its handler factory differs
        return server


def serve_forever(app: web.Application, *, host: str, port: int) -> None:
    """Serve ``app`` with ``AppRunner`` until SIGINT or SIGTERM (what ``web.run_app`` does, with JSON errors)."""

    async def main() -> None:
        runner = AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
