"""Fetching a span's weights from a weight source into a verified local folder that LayerSpan loads unchanged.

The manifest's own sha256 and every tensor's sha256 and size are checked before anything is written; a tensor
that arrives short, altered or malformed stops the fetch with an EfedError that names it, so a server never runs
a span whose bytes did not arrive whole. The folder holds config.json and one safetensors file per layer with the
model's own tensor names (``model.layers.N.*``, float32). It is kept under the cache directory by the manifest's
sha256: a restart that gets the same manifest re-checks the files' hashes and downloads nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from safetensors.torch import save_file
from tqdm import tqdm

from efedllm.compression.codec import CodecSpec, check_seal, decode_tensor
from efedllm.errors import EfedError
from efedllm.model.source import cache_dir
from efedllm.weights.source import FORMAT, layer_index

MAX_MANIFEST_BYTES = 16 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


@dataclass(frozen=True, kw_only=True)
class FetchedSpan:
    folder: Path
    manifest_sha256: str
    from_cache: bool
    report: dict
    """What was received: model, span, codec, bytes, raw float32 bytes, and per tensor its codec, k and energy."""

    def summary(self) -> list[str]:
        r = self.report
        matrices = [t for t in r["tensors"] if len(t["shape"]) == 2]
        factored = [t for t in matrices if t["codec"] == "svd"]
        lines = [
            f"weights for layers {r['first']}:{r['first'] + r['count']} of {r['model']} "
            f"{'from cache' if self.from_cache else 'received'}: {r['bytes']:,} bytes in {r['codec']} "
            f"({r['bytes'] / r['raw_float32_bytes']:.1%} of float32), checksums verified"
            + (f", {r['seconds']:.1f}s" if not self.from_cache else "")
        ]
        if r["codec"].startswith("svd"):
            ks = ", ".join(f"{t['name'].split('.', 3)[-1].removesuffix('.weight')} k={t['k']}" for t in factored[:7])
            lines.append(
                f"svd: {len(factored)} of {len(matrices)} matrices factored, the others raw (factors would "
                f"not be smaller)"
                + (
                    f"; retained energy >= {min(t['energy'] for t in factored):.4f}; {ks}"
                    + (" ..." if len(factored) > 7 else "")
                    if factored
                    else ""
                )
            )
        return lines


def fetch_span(
    url: str,
    *,
    first: int,
    count: int,
    codec: str = "raw",
    energy: float | None = None,
    ratio: float | None = None,
    model: str | None = None,
    cache: Path | None = None,
    progress=print,
    bar: bool = True,
    timeout: float = 120.0,
) -> FetchedSpan:
    """Layers [first, first + count) from the weight source at ``url``, verified, in a local folder.

    ``model``, when given, must name the model the source serves (a packaged name or a folder's name)."""
    spec = CodecSpec(codec=codec, energy=energy, ratio=ratio)
    base = url.rstrip("/")
    http = requests.Session()
    manifest = _get_manifest(http, base, first, count, spec, timeout)
    digest = check_seal(manifest)
    _check_manifest(manifest, first=first, count=count, spec=spec, model=model)
    root = cache or cache_dir() / "spans"
    root.mkdir(parents=True, exist_ok=True)
    folder = root / digest
    with open(root / f".{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # servers fetching the same span together download it once
        if _verified(folder, digest):
            report = json.loads((folder / "report.json").read_text())
            return FetchedSpan(folder=folder, manifest_sha256=digest, from_cache=True, report=report)
        progress(
            f"fetching layers {first}:{first + count} from {base} in {spec.describe()}: {manifest['bytes']:,} bytes"
        )
        report = _download(http, base, manifest, spec, folder, timeout=timeout, bar=bar)
    return FetchedSpan(folder=folder, manifest_sha256=digest, from_cache=False, report=report)


def _download(
    http: requests.Session, base: str, manifest: dict, spec: CodecSpec, folder: Path, *, timeout: float, bar: bool
) -> dict:
    """Every tensor of the manifest, checked and decoded, into ``folder`` (via a partial folder that only a
    complete, verified download turns into ``folder``); the report of what was received."""
    started = time.monotonic()
    first, count = manifest["first"], manifest["count"]
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        files = {}
        with tqdm(
            total=manifest["bytes"],
            unit="B",
            unit_scale=True,
            desc=f"layers {first}:{first + count}",
            file=sys.stderr,
            disable=not bar,
            mininterval=1.0,
        ) as meter:
            for layer in range(first, first + count):
                tensors = {}
                for entry in (e for e in manifest["tensors"] if layer_index(e["name"]) == layer):
                    data = _get_blob(http, base, entry, spec, timeout, meter)
                    tensors[entry["name"]] = decode_tensor(entry, data)
                file = f"layer-{layer:05d}.safetensors"
                save_file(tensors, tmp / file, metadata={"format": "pt"})
                files[file] = _file_sha256(tmp / file)
        report = {key: manifest[key] for key in ("model", "first", "count", "bytes", "raw_float32_bytes")}
        report["codec"] = spec.describe()
        report["seconds"] = round(time.monotonic() - started, 3)
        report["tensors"] = [
            {k: e[k] for k in ("name", "codec", "shape", "bytes", "k", "energy") if k in e} for e in manifest["tensors"]
        ]
        (tmp / "config.json").write_text(json.dumps(manifest["config"], indent=2))
        (tmp / "report.json").write_text(json.dumps(report, indent=1))
        (tmp / "verified.json").write_text(
            json.dumps({"manifest_sha256": manifest["sha256"], "files": files}, indent=1)
        )
        shutil.rmtree(folder, ignore_errors=True)
        tmp.replace(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _get_manifest(http: requests.Session, base: str, first: int, count: int, spec: CodecSpec, timeout: float) -> dict:
    response = _get(http, f"{base}/manifest", {"first": first, "count": count, **spec.query()}, timeout, "the manifest")
    with response:
        body = response.raw.read(MAX_MANIFEST_BYTES + 1, decode_content=True)
    if len(body) > MAX_MANIFEST_BYTES:
        raise EfedError(f"weight source {base}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        manifest = json.loads(body)
    except ValueError:
        raise EfedError(f"weight source {base}: the manifest is not JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise EfedError(f"weight source {base}: not an {FORMAT} manifest")
    return manifest


def _check_manifest(m: dict, *, first: int, count: int, spec: CodecSpec, model: str | None) -> None:
    """The manifest is the one asked for and every entry is well formed and inside the span."""
    if (m.get("first"), m.get("count"), m.get("codec")) != (first, count, spec.query()):
        raise EfedError(
            f"weight source answered layers {m.get('first')}+{m.get('count')} in {m.get('codec')}, "
            f"not {first}+{count} in {spec.query()}"
        )
    if model is not None and m.get("model") != Path(model).name:
        raise EfedError(f"the weight source serves {m.get('model')!r}, not {Path(model).name!r}")
    config = m.get("config")
    if not isinstance(config, dict) or first + count > config.get("num_hidden_layers", -1):
        raise EfedError("weight manifest: config missing or has too few layers")
    tensors = m.get("tensors")
    if not isinstance(tensors, list) or not tensors:
        raise EfedError("weight manifest lists no tensors")
    names = set()
    for e in tensors:
        ok = (
            isinstance(e, dict)
            and isinstance(e.get("name"), str)
            and e["name"] not in names
            and layer_index(e["name"]) in range(first, first + count)
            and isinstance(e.get("bytes"), int)
            and 0 < e["bytes"] < 1 << 34
            and isinstance(e.get("sha256"), str)
            and _SHA256.match(e["sha256"])
            and isinstance(e.get("shape"), list)
            and all(isinstance(s, int) and s > 0 for s in e["shape"])
        )
        if not ok:
            raise EfedError(f"weight manifest: malformed entry {str(e)[:200]}")
        names.add(e["name"])
    if {layer_index(n) for n in names} != set(range(first, first + count)):
        raise EfedError("weight manifest: some layers of the span have no tensors")
    if m.get("bytes") != sum(e["bytes"] for e in tensors):
        raise EfedError("weight manifest: total bytes do not add up")


def _get_blob(http: requests.Session, base: str, entry: dict, spec: CodecSpec, timeout: float, meter) -> bytes:
    name, expected = entry["name"], entry["bytes"]
    response = _get(http, f"{base}/tensors/{name}", spec.query(), timeout, f"tensor {name}")
    data = bytearray()
    try:
        with response:
            for chunk in response.iter_content(_CHUNK):
                data += chunk
                meter.update(len(chunk))
                if len(data) > expected:
                    raise EfedError(f"tensor {name}: more bytes than the {expected} announced; refusing it")
    except requests.RequestException as exc:
        raise EfedError(f"tensor {name}: transfer broke off after {len(data)} of {expected} bytes ({exc})") from None
    return bytes(data)


def _get(http: requests.Session, url: str, params: dict, timeout: float, what: str) -> requests.Response:
    try:
        response = http.get(url, params=params, timeout=timeout, stream=True)
    except requests.RequestException as exc:
        raise EfedError(f"weight source unreachable for {what}: {exc}") from None
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text[:200])
        except ValueError:
            message = response.text[:200]
        raise EfedError(f"weight source refused {what}: {response.status_code} {message}")
    return response


def _verified(folder: Path, digest: str) -> bool:
    """Whether ``folder`` holds a complete earlier fetch of this manifest, its files unchanged."""
    try:
        record = json.loads((folder / "verified.json").read_text())
    except (OSError, ValueError):
        return False
    if record.get("manifest_sha256") != digest:
        return False
    present = {p.name for p in folder.glob("*.safetensors")}
    if present != set(record["files"]):
        return False
    return all(_file_sha256(folder / file) == sha for file, sha in record["files"].items())


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
