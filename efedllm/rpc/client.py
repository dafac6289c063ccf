"""``ServerClient``: one HTTP client of one server, the only code that sends the server protocol's requests.

Failures are sorted once, here: ``ServerFailure`` (unreachable, timed out, overloaded, session expired: another
server may serve instead) and ``ServerRefused`` (any other 4xx: the caller's own bug, raised to the user).
"""

from __future__ import annotations

import requests
import torch

from efedllm import wire
from efedllm.errors import EfedError
from efedllm.rpc import routes
from efedllm.rpc.messages import ErrorBody, MessageError, OpenSession, ServerInfo, SessionOpened

RETRYABLE_STATUS = {402, 404, 429, 500, 502, 503, 504, 507}
REQUEST_TIMEOUT_S = 30.0
"""Seconds one request may take before the client routes around its server: room for a long prefill on a busy
CPU server, while a server that hangs (stopped, swapping, partitioned away) costs a user seconds, not minutes."""
CONNECT_TIMEOUT_S = 5.0
"""Seconds to open a connection (within the request timeout): a server that does not even accept is given up
sooner."""
INFO_TIMEOUT_S = 3.0
"""Seconds a server has to answer ``GET /info`` before a client leaves it out."""
CLOSE_TIMEOUT_S = 2.0


class ServerFailure(Exception):
    """The server could not serve the request; another server may."""

    def __init__(self, endpoint: str, message: str, *, status: int | None = None, cause: str = ""):
        super().__init__(message)
        self.endpoint = endpoint
        self.status = status
        """The HTTP status, or None when there was no answer (or no well-formed one)."""
        self.cause = cause or (f"HTTP {status}" if status is not None else message)
        """Short: ``HTTP 503`` or the transport error's class name."""


class ServerRefused(EfedError):
    """The server refused the request as bad (a 4xx that retrying elsewhere would not fix)."""

    def __init__(self, endpoint: str, status: int, message: str):
        super().__init__(f"server refused the request (HTTP {status}): {message}")
        self.endpoint, self.status = endpoint, status


class ServerClient:
    def __init__(
        self,
        endpoint: str,
        *,
        http: requests.Session | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ):
        if not timeout > 0:
            raise EfedError(f"the request timeout must be positive, not {timeout}")
        self.endpoint = endpoint
        self.http = http or requests.Session()
        self.timeout = (min(connect_timeout, timeout), timeout)
        """(connect, read) seconds for each request."""
        self._wire_dtypes: dict[str, torch.dtype] = {}
        """Per open session, the dtype its hidden states travel in (the server's compute dtype)."""

    def url(self, path: str) -> str:
        return self.endpoint.rstrip("/") + path

    def info(self, *, timeout: float = INFO_TIMEOUT_S) -> ServerInfo:
        """``GET /info``; MessageError when the answer is not a ServerInfo."""
        response = self.send("get", routes.INFO, failing="no /info", timeout=timeout)
        try:
            body = response.json()
        except ValueError:
            raise MessageError("/info: the body is not JSON") from None
        return ServerInfo.from_json(body)

    def open_session(self, start: int, end: int) -> SessionOpened:
        response = self.send(
            "post",
            routes.SESSIONS,
            failing="cannot open a session",
            json=OpenSession(start=start, end=end).to_json(),
            timeout=self.timeout,
        )
        try:
            opened = SessionOpened.from_json(response.json())
            self._wire_dtypes[opened.session] = wire.dtype_named(opened.dtype)
        except ValueError as exc:  # MessageError, not JSON at all, or an unknown dtype (WireError)
            raise ServerFailure(
                self.endpoint, f"cannot open a session: malformed answer ({exc})", cause="malformed answer"
            ) from None
        return opened

    def forward(
        self,
        session: str,
        hidden: torch.Tensor,
        *,
        max_tokens: int = 1 << 30,
        answered=None,
        headers: dict[str, str] | None = None,
    ) -> torch.Tensor:
        """The server's output for ``hidden``; wire.WireError when its answer does not decode. ``answered``, when
        given, is called with the output and the answer's headers before the output is returned (the client's
        check of the server's signature, client/answers.py); it raises ServerFailure to refuse the output.
        ``headers``: more request headers (a payment, client/payments.py).

        The hidden states travel in the session's dtype (the server's compute dtype, told when it opened): ``hidden``
        is cast to it, the answer decoded in it, checked by ``answered`` as the server signed it, and returned in
        ``hidden``'s dtype."""
        wire_dtype = self._wire_dtypes.get(session, hidden.dtype)
        response = self.send(
            "post",
            routes.forward(session),
            data=wire.encode(hidden.to(wire_dtype)),
            headers={"Content-Type": wire.CONTENT_TYPE, **(headers or {})},
            timeout=self.timeout,
        )
        output = wire.decode(response.content, hidden_size=hidden.shape[-1], dtype=wire_dtype, max_tokens=max_tokens)
        if answered is not None:
            answered(output, response.headers)
        return output.to(hidden.dtype)

    def forward_steps(
        self, steps: list[tuple[str, torch.Tensor, dict[str, str]]]
    ) -> list[tuple[torch.Tensor, dict[str, str]]]:
        """One decode step of each of several sessions of this server in one request (``POST /steps``): ``steps``
        are (session, hidden [1, 1, hidden] in the session's wire dtype, the step's headers, e.g. its payment);
        the answer is (output in that dtype, the step's answer headers, e.g. its signature) per step, in order.
        wire.WireError when the answer does not decode."""
        hidden = torch.cat([h for _, h, _ in steps], dim=0)
        response = self.send(
            "post",
            routes.STEPS,
            data=wire.encode_steps(hidden, headers=[h for _, _, h in steps], sessions=[s for s, _, _ in steps]),
            headers={"Content-Type": wire.CONTENT_TYPE},
            timeout=self.timeout,
        )
        answer = wire.decode_steps(
            response.content, hidden_size=hidden.shape[-1], dtype=hidden.dtype, max_steps=len(steps), sessions=False
        )
        if answer.hidden.shape[0] != len(steps):
            raise wire.WireError(f"{len(steps)} steps sent, {answer.hidden.shape[0]} answered")
        return list(zip(answer.hidden.split(1, dim=0), answer.headers))

    def wire_dtype(self, session: str, default: torch.dtype) -> torch.dtype:
        """The dtype ``session``'s hidden states travel in (told when it opened)."""
        return self._wire_dtypes.get(session, default)

    def close(self, session: str, *, timeout: float = CLOSE_TIMEOUT_S) -> bool:
        """Close ``session`` (best effort: never raises); whether the server confirmed."""
        self._wire_dtypes.pop(session, None)
        try:
            return self.http.delete(self.url(routes.session(session)), timeout=timeout).ok
        except requests.RequestException:
            return False

    def send(self, method: str, path: str, *, failing: str = "", **kwargs) -> requests.Response:
        """The answer of ``self.http.METHOD(url of path, **kwargs)``, checked (``check``); ServerFailure
        ``FAILING: ERROR`` (or the transport error's class name alone) when no answer came."""
        try:
            response = getattr(self.http, method)(self.url(path), **kwargs)
        except requests.RequestException as exc:
            name = exc.__class__.__name__
            raise ServerFailure(self.endpoint, f"{failing}: {name}" if failing else name, cause=name) from None
        self.check(response)
        return response

    def check(self, response: requests.Response) -> None:
        """Nothing for a 2xx; else ServerFailure (retryable status) or ServerRefused."""
        if response.ok:
            return
        try:
            message = ErrorBody.from_json(response.json()).error
        except ValueError:
            message = response.text[:200]
        if response.status_code in RETRYABLE_STATUS:
            raise ServerFailure(self.endpoint, f"HTTP {response.status_code}: {message}", status=response.status_code)
        raise ServerRefused(self.endpoint, response.status_code, message)
