"""Hostile queries and paths to every route of the weight source: never a 5xx, every error JSON, still serving.

The app is the real one (``efedllm weights serve`` builds the same) over a tiny random Llama folder, so that
even the svd codec answers in milliseconds; what is fuzzed is the parsing and bounding of every input.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

import pytest
from harness import METHODS, Served, assert_well_formed
from hypothesis import given, settings
from hypothesis import strategies as st
from server_setup import LAYERS
from strategies import ANY_INT, PATH_TRICKS, QUERY, SEGMENT, TEXT

from efedllm.compression.codec import CODECS
from efedllm.weights.app import create_app
from efedllm.weights.source import WeightSource


@pytest.fixture(scope="module")
def source(tiny_folder) -> WeightSource:
    return WeightSource(tiny_folder, name="tiny-llama", cache_bytes=4 << 20)


@pytest.fixture(scope="module")
def served_weights(source):
    with Served(create_app(source)) as served:
        yield served


NUMBERS = st.one_of(
    ANY_INT.map(str),
    st.floats().map(repr),
    st.sampled_from(
        ["0.99", "0.5", "1", "0", "-0", "1e-320", "nan", "inf", "-inf", "0x10", "1_0", " 1", "\u0661", "\uff11", ""]
    ),
    TEXT,
)
CODEC_QUERY = st.fixed_dictionaries(
    {},
    optional={
        "codec": st.sampled_from(CODECS) | TEXT,
        "energy": NUMBERS,
        "ratio": NUMBERS,
        "first": st.integers(-2, LAYERS + 2).map(str) | NUMBERS,
        "count": st.integers(-2, LAYERS + 2).map(str) | NUMBERS,
    },
).map(lambda q: "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in q.items()))


@settings(max_examples=500)
@given(query=st.one_of(CODEC_QUERY, QUERY))
def test_manifest_with_any_query(served_weights, query):
    answer = served_weights.request("GET", "/manifest?" + query)
    assert_well_formed(answer)
    assert answer.status in (200, 400), answer
    if answer.status == 200:
        manifest = answer.json()
        assert 0 <= manifest["first"] < manifest["first"] + manifest["count"] <= LAYERS


@settings(max_examples=500)
@given(data=st.data(), query=st.one_of(CODEC_QUERY, QUERY))
def test_tensors_with_any_name_and_query(served_weights, source, data, query):
    name = data.draw(
        st.one_of(
            st.sampled_from(sorted(source.layer_of)).map(lambda n: quote(n, safe="")),
            SEGMENT,
            st.sampled_from(
                [
                    "model.embed_tokens.weight",
                    "lm_head.weight",
                    "model.layers.99.mlp.up_proj.weight",
                    "config.json",
                    "..%2Fconfig.json",
                    "%2Fetc%2Fpasswd",
                ]
            ),
        ),
        label="name",
    )
    answer = served_weights.request("GET", f"/tensors/{name}?{query}")
    assert_well_formed(answer)
    assert answer.status in (200, 400, 404), answer


@settings(max_examples=200)
@given(
    method=st.sampled_from(METHODS),
    segments=st.lists(SEGMENT | PATH_TRICKS, max_size=4),
    query=QUERY,
    body=st.none() | st.binary(max_size=256),
)
def test_any_route(served_weights, method, segments, query, body):
    answer = served_weights.request(method, "/" + "/".join(segments) + ("?" + query if query else ""), body)
    assert_well_formed(answer)


def test_still_serving_after_the_abuse(served_weights):
    manifest = served_weights.request("GET", "/manifest?first=2&count=2&codec=svd&energy=0.9").json()
    assert manifest["count"] == 2 and manifest["tensors"]
    for entry in manifest["tensors"][:3]:
        blob = served_weights.request("GET", f"/tensors/{entry['name']}?codec=svd&energy=0.9")
        assert blob.status == 200 and hashlib.sha256(blob.body).hexdigest() == entry["sha256"]
