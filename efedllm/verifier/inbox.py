"""The signed answers clients hand to verifiers (issue 14), kept per epoch and server.

A server signs every answer it sends (efedllm/receipts.py). Random openings check what a server *recorded*; a
server that records the honest output and sends a client another ("serve wrong, record right") passes them. So a
client hands a random sample of its signed answers to every verifier (client/reports.py), and each verifier opens
those leaves too: a committed leaf that differs from the answer its server signed, or an index the server never
committed, is fraud the server's own signature proves (verifier/handed.py).

Verifiers must agree on what they saw, or an honest one that saw a fraud the others did not would reveal a score
far from the median and be slashed for it. Two rules make their sets the same: an answer for epoch e is taken only
while e's work period runs (chain time; later, the on-chain challenge remains), and before scoring each verifier
pulls the answers every other verifier took (``GET /answers?epoch=``). Everything is checked on the way in (the
server's signature for this deployment's domain, a registered server, the epoch), so nothing unsigned or foreign
is stored, and a flood is bounded per epoch and server.

Routes (JSON; every error a 4xx with a JSON body): ``POST /answers`` {"answers": [SignedAnswer.to_json(), ...]}
-> {"accepted": n, "refused": [reasons]}; ``GET /answers?epoch=N`` -> {"epoch": N, "answers": [...]};
``GET /info`` -> {"verifier": address}.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from aiohttp import web

from efedllm.http import AppRunner, json_errors
from efedllm.receipts import AnswerDomain, SignedAnswer
from efedllm.rpc.routes import ANSWERS, INFO

log = logging.getLogger("efedllm.verifier")


@dataclass(frozen=True, kw_only=True)
class InboxConfig:
    """Where a verifier takes the signed answers clients hand it (announced on chain at start)."""

    host: str = "127.0.0.1"
    """Interface the verifier's answer inbox listens on."""
    port: int = 8100
    """Port of the answer inbox; 0 runs none (clients then cannot hand this verifier their answers)."""
    public_url: str | None = field(default=None, metadata={"default_help": "http://HOST:PORT"})
    """Endpoint announced on chain (VerifierStakes.announceEndpoint)."""
    per_server: int = 64
    """Answers kept per epoch and server; more are refused (a client needs only a few)."""

    @property
    def endpoint(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


MAX_POST = 256
"""Answers in one request."""
KEPT_PULL = 10_000
"""Answers pulled from another verifier for one epoch, at most."""
KEPT_EPOCHS = 4
"""Epochs of answers kept (an epoch is scored within two epochs of its end)."""


class InboxError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class AnswerInbox:
    """Answers by (epoch, server, index), appended to a JSON-lines file so that a restart keeps them."""

    def __init__(
        self,
        path: Path,
        *,
        domain: AnswerDomain,
        is_server: Callable[[str], bool],
        current_epoch: Callable[[], int],
        per_server: int = InboxConfig.per_server,
    ):
        self.path, self.domain, self.is_server, self.current_epoch = path, domain, is_server, current_epoch
        self.per_server = per_server
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._answers: dict[int, dict[str, dict[int, SignedAnswer]]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    self._keep(SignedAnswer.from_json(json.loads(line)))
                except ValueError:
                    continue  # a line cut short by a crash

    def of(self, epoch: int) -> list[SignedAnswer]:
        with self._lock:
            return [a for by_index in self._answers.get(epoch, {}).values() for a in by_index.values()]

    def take(self, answers: list[SignedAnswer], *, pulled: bool = False) -> tuple[int, list[str]]:
        """Keep the valid answers not kept yet; (how many were new, why each other one was refused). ``pulled``:
        from another verifier, which took them while their epoch worked (not checked against the clock again)."""
        now = self.current_epoch()
        accepted, refused, new = 0, [], []
        for signed in answers:
            why = self._why_not(signed, now=now, pulled=pulled)
            if why is not None:
                refused.append(why)
                continue
            with self._lock:
                if self._keep(signed):
                    accepted += 1
                    new.append(signed)
        if new:
            with self._lock, self.path.open("a") as out:
                out.writelines(json.dumps(a.to_json()) + "\n" for a in new)
        return accepted, refused

    def _why_not(self, signed: SignedAnswer, *, now: int, pulled: bool) -> str | None:
        a = signed.answer
        where = f"{signed.server} epoch {a.epoch} task {a.index}"
        if not pulled and a.epoch != now:
            return f"{where}: answers are taken while their epoch works (epoch {now}); challenge it on chain instead"
        if pulled and not now - KEPT_EPOCHS < a.epoch <= now:
            return f"{where}: not a recent epoch"
        if not signed.signed_by_server(self.domain):
            return f"{where}: not signed by that server for this deployment"
        if not self.is_server(signed.server):
            return f"{where}: not a registered server"
        return None

    def _keep(self, signed: SignedAnswer) -> bool:
        by_server = self._answers.setdefault(signed.answer.epoch, {}).setdefault(signed.server, {})
        if signed.answer.index in by_server or len(by_server) >= self.per_server:
            return False
        by_server[signed.answer.index] = signed
        for old in [e for e in self._answers if e <= signed.answer.epoch - KEPT_EPOCHS]:
            del self._answers[old]
        return True


def inbox_app(inbox: AnswerInbox, *, verifier: str) -> web.Application:
    app = web.Application(
        client_max_size=1024 * 1024,
        middlewares=[json_errors(log, {InboxError: lambda exc: exc.status})],
    )

    async def hand(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            raw = body["answers"]
            if not isinstance(raw, list):
                raise TypeError
        except (ValueError, TypeError, KeyError) as exc:
            raise InboxError(f'the body must be JSON {{"answers": [...]}} ({exc.__class__.__name__})') from None
        if len(raw) > MAX_POST:
            raise InboxError(f"at most {MAX_POST} answers per request", status=413)
        try:
            answers = [SignedAnswer.from_json(item) for item in raw]
        except ValueError as exc:
            raise InboxError(str(exc)) from None
        accepted, refused = await asyncio.to_thread(inbox.take, answers)
        if answers and not accepted and refused:
            raise InboxError(f"no answer taken: {refused[0]}", status=422)
        return web.json_response({"accepted": accepted, "refused": refused}, status=202)

    async def listing(request: web.Request) -> web.Response:
        try:
            epoch = int(request.query["epoch"])
        except (KeyError, ValueError):
            raise InboxError("give ?epoch=N (an integer)") from None
        answers = await asyncio.to_thread(inbox.of, epoch)
        return web.json_response({"epoch": epoch, "answers": [a.to_json() for a in answers]})

    async def info(_request: web.Request) -> web.Response:
        return web.json_response({"verifier": verifier})

    app.router.add_post(ANSWERS, hand)
    app.router.add_get(ANSWERS, listing)
    app.router.add_get(INFO, info)
    return app


def pull_answers(endpoint: str, epoch: int, *, timeout: float = 10.0) -> list[SignedAnswer] | None:
    """The answers another verifier took for ``epoch`` (None when it cannot be reached or answers nonsense;
    each answer is checked again when taken)."""
    try:
        response = requests.get(endpoint.rstrip("/") + ANSWERS, params={"epoch": epoch}, timeout=timeout)
        response.raise_for_status()
        raw = response.json()["answers"]
        return [SignedAnswer.from_json(item) for item in raw[:KEPT_PULL]]
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


class InboxService:
    """Runs ``inbox_app`` on its own thread and event loop beside the verifier's (synchronous) epoch loop."""

    def __init__(self, app: web.Application, *, host: str, port: int):
        self.app, self.host, self.port = app, host, port
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="answer-inbox", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = AppRunner(self.app, access_log=None)
        try:
            self._loop.run_until_complete(runner.setup())
            self._loop.run_until_complete(web.TCPSite(runner, self.host, self.port).start())
        except BaseException as exc:  # noqa: BLE001 - port taken: reported by start()
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


def _registered(protocol) -> Callable[[str], bool]:
    """Whether an address is a registered server, asking the chain once per address that is (a registration is
    for ever; one that is not yet may register later)."""
    from efedllm.chain.enums import Status

    known: set[str] = set()

    def registered(address: str) -> bool:
        if address not in known and protocol.server(address).status != Status.NONE:
            known.add(address)
        return address in known

    return registered


def open_inbox(
    protocol, config: InboxConfig, *, data_dir: Path, say=print
) -> tuple[AnswerInbox | None, InboxService | None]:
    """Start the answer inbox of ``efedllm verifier run`` (none when ``config.port`` is 0) and announce its
    endpoint on chain when it differs from the one announced before."""
    if not config.port:
        say("no answer inbox (--port 0): clients cannot hand this verifier their signed answers")
        return None, None
    me = protocol.signer.address
    inbox = AnswerInbox(
        Path(data_dir) / f"answers-{me}.jsonl",
        domain=protocol.answer_domain,
        is_server=_registered(protocol),
        current_epoch=protocol.current_epoch,
        per_server=config.per_server,
    )
    service = InboxService(inbox_app(inbox, verifier=me), host=config.host, port=config.port)
    try:
        service.start()
    except OSError as exc:
        from efedllm.errors import EfedError

        raise EfedError(f"cannot listen on {config.host}:{config.port} for clients' answers ({exc.strerror})") from None
    if protocol.stakes.functions.endpointOf(me).call() != config.endpoint:
        call = protocol.stakes.functions.announceEndpoint(config.endpoint)
        protocol.tx.send(call, label="announceEndpoint")
    say(f"taking clients' signed answers at {config.endpoint}")
    return inbox, service
