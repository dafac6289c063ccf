"""What every HTTP service of the project (servers, the weight source, the dashboard) answers on an error: a JSON
body ``{"error": ..., "status": ...}`` with a 4xx status for anything the client can fix, 5xx only for a bug,
which is logged while the service keeps serving everyone else."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from aiohttp import web


def json_error(status: int, message: str, *, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message, "status": status}, status=status, headers=headers)


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
        except Exception:
            log.exception("unhandled error on %s %s", request.method, request.path)
            return json_error(500, "internal server error", headers=headers)

    return middleware
