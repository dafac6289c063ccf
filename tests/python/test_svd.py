"""Truncated SVD factors and the codecs a weight travels in: round trips, the choice of k, and refusals."""

from __future__ import annotations

import pytest
import torch

from efedllm.compression import svd
from efedllm.compression.codec import CodecSpec, check_seal, decode_tensor, encode_tensor, seal
from efedllm.compression.sizes import compression_ratio, k_for_ratio, max_useful_rank, saves_bytes
from efedllm.errors import EfedError, InvalidParameter


def with_spectrum(m: int, n: int, s: list[float], seed: int = 0) -> torch.Tensor:
    """An m x n float64 matrix whose singular values are exactly ``s`` (then zeros)."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(m, len(s), generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, len(s), generator=g, dtype=torch.float64))
    return (u * torch.tensor(s, dtype=torch.float64)) @ v.T


def test_full_rank_factors_reconstruct_exactly():
    w = torch.randn(40, 30, generator=torch.Generator().manual_seed(1))
    factors = svd.factor(w, k=30)
    assert factors.k == 30 and factors.shape == (40, 30)
    assert factors.energy == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(factors.reconstruct(), w, atol=2e-5)
    assert svd.truncate(w, k=30) is None  # full rank never saves bytes: (m + n + 1) r > m n


def test_low_rank_matrix_round_trips_at_its_rank():
    w = with_spectrum(60, 50, [9.0, 5.0, 2.0, 1.0, 0.5]).float()
    factors = svd.truncate(w, k=5)
    assert factors is not None and factors.energy == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(factors.reconstruct(), w, atol=1e-5)
    worse = svd.truncate(w, k=4)
    assert not torch.allclose(worse.reconstruct(), w, atol=1e-3)


@pytest.mark.parametrize("energy,k", [(0.5, 1), (0.75, 2), (0.7501, 3), (0.90, 3), (0.9001, 4), (1.0, 4)])
def test_k_by_retained_energy_on_a_known_spectrum(energy, k):
    # squared singular values 50, 25, 15, 10 of a total of 100: cumulative energy 0.50, 0.75, 0.90, 1.00
    s = [50**0.5, 25**0.5, 15**0.5, 10**0.5]
    assert svd.k_for_energy(torch.tensor(s), energy) == k
    w = with_spectrum(64, 48, s)
    factors = svd.truncate(w, energy=energy)
    assert factors.k == k
    assert factors.energy >= energy - 1e-9
    assert factors.energy == pytest.approx(sum(x * x for x in s[:k]) / 100, abs=1e-9)


def test_k_by_ratio_follows_eq_15():
    assert k_for_ratio(100, 50, 0.5) == 16  # floor(100 * 50 * 0.5 / 151)
    assert compression_ratio(100, 50, 16) <= 0.5 < compression_ratio(100, 50, 17)
    w = torch.randn(100, 50, generator=torch.Generator().manual_seed(2))
    factors = svd.truncate(w, ratio=0.5)
    assert factors.k == 16
    full = torch.linalg.svdvals(w.double())
    assert factors.energy == pytest.approx(float((full[:16] ** 2).sum() / (full**2).sum()), abs=1e-6)


def test_svd_is_skipped_where_it_would_not_save_bytes():
    assert max_useful_rank(10, 10) == 4 and saves_bytes(10, 10, 4) and not saves_bytes(10, 10, 5)
    w = torch.randn(10, 10, generator=torch.Generator().manual_seed(3))
    assert svd.truncate(w, k=5) is None
    assert svd.truncate(w, k=4).k == 4
    assert svd.truncate(w, energy=1.0) is None  # needs all 10 singular values


def test_randomized_svd_is_close_to_optimal_and_deterministic():
    s = [float(i) ** -0.8 for i in range(1, 201)]
    w = with_spectrum(400, 300, s, seed=4).float()
    best = sum(x * x for x in s[:30]) / sum(x * x for x in s)
    fast = svd.truncate(w, k=30, method="randomized")
    assert fast.method == "randomized"
    assert best - 0.005 < fast.energy <= best + 1e-6
    again = svd.truncate(w, k=30, method="randomized")
    assert torch.equal(fast.u, again.u) and torch.equal(fast.s, again.s)
    by_energy = svd.truncate(w, energy=0.8, method="randomized")
    assert by_energy.energy >= 0.8 and by_energy.k >= svd.k_for_energy(torch.tensor(s), 0.8)


def test_auto_picks_randomized_only_for_large_matrices():
    assert svd.pick_method(576, 1536, "auto") == "full"
    assert svd.pick_method(4096, 4096, "auto") == "randomized"
    with pytest.raises(InvalidParameter):
        svd.pick_method(4, 4, "magic")


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(codec="svd"),
        dict(codec="svd", energy=0.9, ratio=0.5),
        dict(codec="raw", energy=0.9),
        dict(codec="svd", energy=1.5),
        dict(codec="svd", ratio=1.0),
        dict(codec="svd", energy=float("nan")),
        dict(codec="zip"),
    ],
)
def test_codec_spec_refuses_bad_settings(kwargs):
    with pytest.raises(InvalidParameter):
        CodecSpec(**kwargs)


def test_codecs_round_trip():
    w = torch.randn(64, 48, generator=torch.Generator().manual_seed(5))
    norm = torch.rand(48)
    raw = encode_tensor("m", w, CodecSpec())
    assert raw.entry["codec"] == "raw" and torch.equal(decode_tensor(raw.entry, raw.data), w)
    half = encode_tensor("m", w, CodecSpec(codec="float16"))
    assert half.entry["codec"] == "float16" and len(half.data) < 0.6 * len(raw.data)
    assert torch.equal(decode_tensor(half.entry, half.data), w.half().float())
    assert encode_tensor("n", norm, CodecSpec(codec="bfloat16")).entry["codec"] == "raw"  # vectors stay raw
    factored = encode_tensor("m", w, CodecSpec(codec="svd", ratio=0.5))
    assert factored.entry["codec"] == "svd" and factored.entry["k"] == k_for_ratio(64, 48, 0.5)
    assert torch.allclose(
        decode_tensor(factored.entry, factored.data), svd.truncate(w, ratio=0.5).reconstruct(), atol=1e-6
    )
    skipped = encode_tensor("m", w, CodecSpec(codec="svd", energy=0.9999))
    assert skipped.entry["codec"] == "raw" and torch.equal(decode_tensor(skipped.entry, skipped.data), w)


def test_altered_or_short_blobs_are_refused_by_name():
    w = torch.randn(32, 16)
    enc = encode_tensor("model.layers.3.mlp.up_proj.weight", w, CodecSpec())
    flipped = bytearray(enc.data)
    flipped[-5] ^= 0x01
    with pytest.raises(EfedError, match=r"model\.layers\.3\.mlp\.up_proj\.weight: sha256 mismatch"):
        decode_tensor(enc.entry, bytes(flipped))
    with pytest.raises(EfedError, match=r"up_proj\.weight: received .* \(truncated transfer\)"):
        decode_tensor(enc.entry, enc.data[:-10])
    forged = encode_tensor("x", torch.randn(16, 32), CodecSpec())  # right checksum, wrong shape for the entry
    with pytest.raises(EfedError, match="expected raw"):
        decode_tensor({**forged.entry, "shape": [32, 16]}, forged.data)


def test_manifest_seal_detects_any_change():
    manifest = seal({"tensors": [{"name": "a", "sha256": "0" * 64}], "count": 2})
    assert check_seal(manifest) == manifest["sha256"]
    with pytest.raises(EfedError, match="manifest: sha256 mismatch"):
        check_seal({**manifest, "count": 3})
