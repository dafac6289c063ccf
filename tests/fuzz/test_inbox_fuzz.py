"""Hostile requests to a verifier's answer inbox (verifier/inbox.py): never a 5xx, every error JSON, nothing
unsigned kept, and an answer its server really signed still taken afterwards.

The app is the real one (``efedllm verifier run`` serves the same); only the chain behind it is replaced by the
two facts it asks of a chain (is this a registered server, which epoch works now), so that hypothesis can send
thousands of requests in seconds.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from eth_account import Account
from harness import METHODS, Served, assert_well_formed
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import ANY_INT, JSON_VALUES, PATH_TRICKS, QUERY, SEGMENT, TEXT

from efedllm.receipts import Answer, AnswerDomain, SignedAnswer, digest
from efedllm.rpc.routes import ANSWERS
from efedllm.verifier.inbox import AnswerInbox, inbox_app

SERVER = Account.from_key("0x" + "42" * 32)
DOMAIN = AnswerDomain(chain_id=31337, contract="0x" + "cd" * 20)
EPOCH = 3


def signed(index: int, *, key=SERVER, epoch: int = EPOCH) -> SignedAnswer:
    answer = Answer(
        epoch=epoch,
        index=index,
        session=b"\x01" * 32,
        step=0,
        start=0,
        end=10,
        past=0,
        prefix_hash=b"\x02" * 32,
        input_hash=b"\x03" * 32,
        output_hash=b"\x04" * 32,
        receipt=bytes(32),
    )
    signature = Account._sign_hash(digest(DOMAIN.data(answer)), key.key).signature
    return SignedAnswer(server=SERVER.address, answer=answer, signature=bytes(signature))


@pytest.fixture(scope="module")
def inbox(tmp_path_factory):
    return AnswerInbox(
        tmp_path_factory.mktemp("inbox") / "answers.jsonl",
        domain=DOMAIN,
        is_server=lambda address: address == SERVER.address,
        current_epoch=lambda: EPOCH,
        per_server=8,
    )


@pytest.fixture(scope="module")
def served(inbox):
    with Served(inbox_app(inbox, verifier="0x" + "ab" * 20)) as served:
        yield served


def valid_json() -> dict:
    return signed(0).to_json()


MUTATED = st.builds(
    lambda key, value: {**valid_json(), key: value},
    st.sampled_from(["server", "answer", "signature"]) | TEXT,
    JSON_VALUES,
) | st.builds(
    lambda key, value: {**valid_json(), "answer": {**valid_json()["answer"], key: value}},
    st.sampled_from(list(valid_json()["answer"])) | TEXT,
    JSON_VALUES | ANY_INT,
)
BODIES = st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.lists(JSON_VALUES | MUTATED, max_size=4).map(lambda a: json.dumps({"answers": a}).encode()),
)


@settings(max_examples=400, deadline=None)
@given(body=BODIES)
def test_any_body_is_refused_cleanly_and_nothing_unsigned_is_kept(served, inbox, body):
    answer = served.request("POST", ANSWERS, body, {"Content-Type": "application/json"})
    assert_well_formed(answer)
    assert answer.status in (202, 400, 413, 422), answer
    assert all(a.signed_by_server(DOMAIN) and a.server == SERVER.address for a in inbox.of(EPOCH))


@settings(max_examples=200, deadline=None)
@given(query=QUERY | ANY_INT.map(lambda n: f"epoch={quote(str(n))}"))
def test_any_listing_query(served, query):
    answer = served.request("GET", f"{ANSWERS}?{query}")
    assert_well_formed(answer)
    assert answer.status in (200, 400), answer


@settings(max_examples=200, deadline=None)
@given(method=st.sampled_from(METHODS), segments=st.lists(SEGMENT | PATH_TRICKS, max_size=3))
def test_any_route(served, method, segments):
    assert_well_formed(served.request(method, "/" + "/".join(segments)))


def test_signed_answers_are_taken_once_and_bounded(served, inbox):
    post = lambda answers: served.request(  # noqa: E731
        "POST", ANSWERS, json.dumps({"answers": [a.to_json() for a in answers]}).encode()
    )
    taken = post([signed(1), signed(1), signed(2)]).json()
    assert taken == {"accepted": 2, "refused": []}  # the second copy of task 1 is not new
    stranger = Account.from_key("0x" + "43" * 32)
    forged = post([signed(3, key=stranger)])
    assert forged.status == 422 and "not signed by that server" in forged.json()["error"]
    late = post([signed(4, epoch=EPOCH - 1)])
    assert late.status == 422 and "challenge it on chain" in late.json()["error"]
    post([signed(i) for i in range(10, 30)])
    assert len(inbox.of(EPOCH)) == 8  # per_server
    listed = served.request("GET", f"{ANSWERS}?epoch={EPOCH}").json()
    assert sorted(a["answer"]["index"] for a in listed["answers"]) == sorted(a.answer.index for a in inbox.of(EPOCH))
    reopened = AnswerInbox(
        inbox.path, domain=DOMAIN, is_server=lambda a: True, current_epoch=lambda: EPOCH, per_server=8
    )
    assert {a.answer.index for a in reopened.of(EPOCH)} == {a.answer.index for a in inbox.of(EPOCH)}  # a restart
