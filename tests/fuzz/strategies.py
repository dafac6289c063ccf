"""Hypothesis strategies for hostile HTTP input: bytes, JSON of every shape, forged safetensors, path tricks."""

from __future__ import annotations

import json
import struct
from urllib.parse import quote

import torch
from hypothesis import strategies as st
from safetensors.torch import save as st_save

# Integers at the edges of every width a parser or a database might use, and far past them.
EDGE_INTS = st.sampled_from(
    [0, 1, -1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 2**256, -(2**256), 10**40]
)
ANY_INT = st.one_of(st.integers(), EDGE_INTS)
TEXT = st.text(max_size=40)  # any unicode, surrogates excluded (they cannot be encoded)
SCALARS = st.one_of(st.none(), st.booleans(), ANY_INT, st.floats(allow_nan=False), TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)


def json_bytes(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


# JSON texts that break parsers rather than validators: numbers past Python's digit limit, deep nesting,
# bare NaN/Infinity (Python accepts them, JSON does not), lone surrogates and invalid UTF-8.
PATHOLOGICAL_JSON = st.one_of(
    st.integers(4_000, 60_000).map(lambda n: b'{"start": ' + b"7" * n + b"}"),
    st.integers(4_000, 60_000).map(lambda n: b'{"epoch": 1, "index": ' + b"9" * n + b"}"),
    st.integers(500, 200_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(500, 100_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.sampled_from(
        [
            b'{"start": NaN}',
            b'{"start": Infinity, "end": -Infinity}',
            b'{"start": 1e999}',
            b'"\\ud800"',
            b'{"\\ud800": 1}',
            b'{"start": 0, "end": 1}\xff',
            b"\xef\xbb\xbf{}",
            b"{}" * 3,
            b"null",
            b"[]",
            b"0",
            b'""',
            b"true",
        ]
    ),
)

# safetensors element types, real and not
DTYPES = (
    st.sampled_from(
        [
            "F32",
            "F16",
            "BF16",
            "F64",
            "I64",
            "I32",
            "I8",
            "U8",
            "BOOL",
            "F8_E4M3",
            "F8_E5M2",
            "C64",
            "U64",
            "f32",
            "",
            "F32 ",
            "\u0000",
        ]
    )
    | TEXT
)
SHAPE_SIZES = st.one_of(
    st.integers(0, 70), st.sampled_from([2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1, 2**63, 2**64, -1, -(2**63)])
)


@st.composite
def forged_safetensors(draw, *, hidden_size: int) -> bytes:
    """A safetensors file whose header lies: shapes, dtypes, offsets, names, lengths and padding are drawn
    freely, each sometimes consistent and sometimes not, so the decoder's every check is reached."""
    tensors = {}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["hidden", "hidden", "x", "__metadata__", ""]) | TEXT)
        shape = draw(
            st.one_of(
                st.lists(SHAPE_SIZES, max_size=5),
                st.tuples(st.just(1), st.integers(0, 70), st.just(hidden_size)).map(list),
                st.just([1, 1, hidden_size]),
            )
        )
        start = draw(st.one_of(st.integers(0, 4096), SHAPE_SIZES))
        end = draw(st.one_of(st.integers(0, 4096), SHAPE_SIZES, st.just(start + 4 * hidden_size)))
        entry = {"dtype": draw(DTYPES), "shape": shape, "data_offsets": [start, end]}
        if draw(st.booleans()):
            entry = draw(
                st.dictionaries(TEXT, JSON_VALUES, max_size=3).map(lambda junk, entry=entry: {**entry, **junk})
            )
        tensors[name] = entry
    if draw(st.booleans()):
        tensors["__metadata__"] = draw(st.one_of(st.dictionaries(TEXT, TEXT, max_size=3), JSON_VALUES))
    header = draw(st.one_of(st.just(json_bytes(tensors)), JSON_VALUES.map(json_bytes), st.binary(max_size=64)))
    header += b" " * draw(st.integers(0, 8))
    length = draw(st.one_of(st.just(len(header)), st.integers(0, 2**64 - 1), st.integers(0, len(header) + 16)))
    data = draw(st.one_of(st.binary(max_size=2048), st.integers(0, 8 * 4 * hidden_size).map(bytes)))
    return struct.pack("<Q", length) + header + data


@st.composite
def real_tensors(draw, *, hidden_size: int, max_tokens: int) -> bytes:
    """A genuine safetensors message: sometimes exactly right, sometimes with the wrong shape, dtype, name,
    extra tensors, NaN/Inf or extreme values."""
    right = draw(st.booleans())
    tokens = draw(st.integers(1, max_tokens + 2))
    shape = [1, tokens, hidden_size] if right else draw(st.lists(st.integers(0, 8), max_size=4).map(lambda s: s or [1]))
    dtype = (
        torch.float32
        if right or draw(st.booleans())
        else draw(
            st.sampled_from(
                [torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int8, torch.bool, torch.uint8]
            )
        )
    )
    values = torch.randn(*shape) * draw(st.sampled_from([0.1, 1.0, 1e4, 1e30]))
    if draw(st.integers(0, 5)) == 0 and values.numel():
        values.view(-1)[draw(st.integers(0, values.numel() - 1))] = draw(
            st.sampled_from([float("nan"), float("inf"), float("-inf"), 3.0e38])
        )
    tensor = values.to(dtype)
    named = {draw(st.sampled_from(["hidden", "hidden", "hidden", "x"])): tensor}
    if draw(st.integers(0, 5)) == 0:
        named["extra"] = torch.zeros(2)
    metadata = draw(st.none() | st.dictionaries(TEXT, TEXT, max_size=3))
    return st_save(named, metadata=metadata)


def forward_bodies(*, hidden_size: int, max_tokens: int):
    return st.one_of(
        st.binary(max_size=4096),
        forged_safetensors(hidden_size=hidden_size),
        real_tensors(hidden_size=hidden_size, max_tokens=max_tokens),
        JSON_VALUES.map(json_bytes),
    )


# Path segments: any unicode percent-encoded as UTF-8 (what clients send), plus the tricks aimed at routing
# and at whatever a handler might do with the text (files, SQL, logs).
PATH_TRICKS = st.sampled_from(
    [
        "..",
        "../..",
        "%2e%2e",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "..%2f..%2finfo",
        "%2F",
        "%00",
        "a%00b",
        "%ff%fe",
        "%",
        "%zz",
        "%25",
        "'%3B%20DROP%20TABLE%20tasks%3B%20--",
        "%0d%0aSet-Cookie:%20x=1",
        "~",
        ".",
        "*",
        "%20",
        "+",
        "%c0%af",
        "%e2%80%ae",
        "a" * 2000,
        "0" * 32,
        "f" * 33,
        "%3Cscript%3E",
        "\\",
        "%5c..%5c",
    ]
)
SEGMENT = st.one_of(PATH_TRICKS, TEXT.map(lambda t: quote(t, safe="")), st.from_regex(r"\A[0-9a-f]{0,40}\Z"))


def session_ids(valid: str | None = None):
    """Session ids to put in a path: hostile ones, and (if given) a valid id with something appended."""
    ids = st.one_of(SEGMENT, st.lists(SEGMENT, min_size=1, max_size=4).map("/".join))
    if valid is not None:
        ids = ids | SEGMENT.map(lambda s: valid + s) | st.just(valid.upper())
    return ids


QUERY = st.lists(
    st.tuples(
        st.one_of(TEXT, st.sampled_from(["first", "count", "codec", "energy", "ratio"])),
        st.one_of(TEXT, ANY_INT.map(str), st.floats().map(str), PATH_TRICKS),
    ),
    max_size=5,
).map(lambda pairs: "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs))

CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/json",
        "application/octet-stream",
        "application/vnd.efedllm.safetensors",
        "text/plain; charset=utf-8",
        "text/plain; charset=x-no-such-charset",
        "application/json; charset=utf-16",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "*/*",
        "",
    ]
)


def headers_with(content_type: str | None) -> dict:
    return {} if content_type is None else {"Content-Type": content_type}
