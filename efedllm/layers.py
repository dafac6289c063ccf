"""Layer spans as people write them: ``10:20`` for layers 10..19, and compact lists like ``0-4, 9``."""

from __future__ import annotations

from efedllm.errors import EfedError


def parse_span(text: str, num_layers: int | None = None) -> tuple[int, int]:
    """``"10:20"`` -> (first=10, count=10); checks the bounds when ``num_layers`` is known."""
    try:
        first_text, end_text = text.split(":")
        first, end = int(first_text), int(end_text)
    except ValueError:
        raise EfedError(f"layers must look like START:END (e.g. 10:20), got {text!r}") from None
    if first < 0 or end <= first or (num_layers is not None and end > num_layers):
        limit = f" of a {num_layers}-layer model" if num_layers is not None else ""
        raise EfedError(
            f"layers {text} are out of range{limit}: need 0 <= START < END"
            + (f" <= {num_layers}" if num_layers else "")
        )
    return first, end - first


def compact_layers(layers: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2, 5'."""
    parts, start = [], None
    for i, layer in enumerate(layers):
        if start is None:
            start = layer
        if i + 1 == len(layers) or layers[i + 1] != layer + 1:
            parts.append(str(start) if start == layer else f"{start}-{layer}")
            start = None
    return ", ".join(parts)
