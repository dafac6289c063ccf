"""Where the client finds servers: the chain's list of active servers, or explicit URLs (development)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from web3.exceptions import Web3Exception

from efedllm.chain.params import ONE
from efedllm.chain.protocol import Protocol, Status
from efedllm.client.payments import Payer
from efedllm.client.routing import Peer
from efedllm.errors import EfedError
from efedllm.receipts import typed_signer
from efedllm.rpc.client import INFO_TIMEOUT_S, ServerClient, ServerFailure
from efedllm.rpc.messages import MessageError, ServerInfo

log = logging.getLogger("efedllm.client")


def probe(endpoint: str, http: requests.Session | None = None) -> ServerInfo | None:
    """A server's /info, or None when it does not answer in time, or (with a warning) answers something that is
    not a ServerInfo."""
    session = http or requests.Session()
    try:
        return ServerClient(endpoint, http=session).info(timeout=INFO_TIMEOUT_S)
    except (ServerFailure, EfedError):
        return None
    except MessageError as exc:
        log.warning("leaving out server %s: %s", endpoint, exc)
        return None
    finally:
        if http is None:
            session.close()


def probe_all(endpoints: list[str]) -> list[ServerInfo | None]:
    """/info of every endpoint, probed in parallel."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(probe, endpoints))


def decode_speed(info: ServerInfo) -> float:
    return info.throughput.decode_tokens_per_s


def serving_label(info: ServerInfo) -> str:
    """How /info says the server computes, as Serving.label reads (``int8/bfloat16``)."""
    return f"int8/{info.dtype}" if info.weights == "int8" else info.dtype


PROBE_TTL_S = 5.0
"""How long StaticPeers reuses its last probe of the servers' /info: generations that follow each other closely
(a chat, an API's requests) do not pay three round trips before their first token each time."""


class StaticPeers:
    """Servers given by URL; their spans come from /info (probed at most every ``ttl`` seconds; a server that
    fails meanwhile is routed around by the session, client/session.py)."""

    def __init__(self, endpoints: list[str], *, ttl: float = PROBE_TTL_S):
        self.endpoints = endpoints
        self.ttl = ttl
        self._probed: tuple[float, list[Peer]] | None = None
        self._lock = threading.Lock()

    def peers(self) -> list[Peer]:
        with self._lock:
            if self._probed is not None and time.monotonic() - self._probed[0] < self.ttl:
                return list(self._probed[1])
        peers = self._probe()
        if len(peers) == len(self.endpoints):  # one that did not answer is probed again next time
            with self._lock:
                self._probed = (time.monotonic(), peers)
        return list(peers)

    def invalidate(self) -> None:
        """Probe again next time (a session found a server failed: its /info decides whether it is left out)."""
        with self._lock:
            self._probed = None

    def _probe(self) -> list[Peer]:
        return [
            Peer(
                endpoint=url,
                first=i.first_layer,
                end=i.first_layer + i.num_layers,
                decode_tokens_per_s=decode_speed(i),
                address=i.address,
                serving=serving_label(i),
            )
            for url, i in zip(self.endpoints, probe_all(self.endpoints))
            if i
        ]


class ChainPeers:
    """Active servers on chain with the spans the contract has on record, probed for speed and liveness.

    A server that is deactivated, inactive or unreachable is left out; so is one whose /info disagrees with its
    on-chain span (it would compute other layers than it is paid for) or with the serving configuration it declared
    (verifiers would hold its work to another configuration's bound).
    """

    def __init__(self, protocol: Protocol):
        self.protocol = protocol
        self.payer = None
        """Pays priced servers, when the client has an account (``protocol.signer``) to sign receipts with."""
        if protocol.signer is not None:
            self.payer = Payer(
                client=protocol.signer.address,
                sign=typed_signer(protocol.w3, protocol.signer),
                domain=protocol.receipt_domain,
                epoch=protocol.current_epoch,
            )

    @property
    def answer_domain(self):
        """Where these servers' signed answers are judged: the clients check them against it."""
        return self.protocol.answer_domain

    def verifier_endpoints(self) -> dict[str, str]:
        """Where the verifiers take signed answers (client/reports.py hands them a sample)."""
        return self.protocol.verifier_endpoints()

    def peers(self) -> list[Peer]:
        try:
            return self._peers()
        except (OSError, Web3Exception) as exc:  # the node is down or restarting: say so, the next call may work
            raise EfedError(
                f"cannot read the server list from the chain ({exc.__class__.__name__}); is the node up?"
            ) from None

    def _peers(self) -> list[Peer]:
        records = [s for s in self.protocol.servers() if s.status == Status.ACTIVE]
        infos = probe_all([s.endpoint for s in records])
        peers = []
        for record, info in zip(records, infos):
            if not info or (info.first_layer, info.num_layers) != (record.first_layer, record.num_layers):
                continue
            if serving_label(info) != record.serving.label:
                continue
            _, last = self.protocol.last_score(record.address)
            trust = last.score / ONE if last.outcome else 1.0  # outcome None: never scored yet
            peers.append(
                Peer(
                    endpoint=record.endpoint,
                    first=record.first_layer,
                    end=record.first_layer + record.num_layers,
                    decode_tokens_per_s=decode_speed(info),
                    trust=trust,
                    address=record.address,
                    price=self.protocol.payments.functions.priceOf(record.address).call(),
                    serving=record.serving.label,
                )
            )
        return peers
