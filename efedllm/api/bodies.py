"""The request bodies of the OpenAI API that ``efedllm api`` accepts, checked into frozen dataclasses.

Whatever a client could get wrong becomes an ``ApiError`` that api/app.py answers as OpenAI does: a 4xx with
``{"error": {"message", "type", "param", "code"}}``, which the ``openai`` client raises as ``BadRequestError``
and its kin. Parameters OpenAI defines that this network cannot honour (``n`` > 1, ``logprobs``, tools) are refused
by name rather than ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_STOP = 4
"""OpenAI's limit on stop sequences."""


class ApiError(Exception):
    """A request the API refuses: ``status``, OpenAI's error ``type``, the offending ``param``, a ``code``."""

    def __init__(self, message: str, *, status: int = 400, type: str = "invalid_request_error", param=None, code=None):
        super().__init__(message)
        self.status, self.type, self.param, self.code = status, type, param, code

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True, kw_only=True)
class Generation:
    """One request, as the engine runs it: either ``messages`` (chat, through the chat template) or ``prompt``
    (raw text)."""

    model: str
    messages: tuple[dict, ...] | None
    prompt: str | None
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool

    @property
    def chat(self) -> bool:
        return self.messages is not None


UNSUPPORTED = {
    "logprobs": (False, None),
    "top_logprobs": (None,),
    "tools": (None, []),
    "functions": (None, []),
    "echo": (False, None),
    "best_of": (1, None),
    "suffix": (None, ""),
}
"""Parameters this API refuses unless they have one of these (harmless) values."""


def _number(body: dict, name: str, default: float, low: float, high: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ApiError(f"{name} must be a number in [{low}, {high}], got {value!r}", param=name)
    return float(value)


def _integer(body: dict, name: str, default, low: int, high: int):
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(f"{name} must be an integer in [{low}, {high}], got {value!r}", param=name)
    return value


def _text(content, where: str) -> str:
    """A message's content: a string, or a list of text parts (``{"type": "text", "text": ...}``)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
    ):
        return "".join(p["text"] for p in content)
    raise ApiError(f"{where} must be a string or a list of text parts", param=where)


def parse(body, *, chat: bool, served: str, max_tokens: int, default_max_tokens: int) -> Generation:
    """The ``Generation`` a ``/v1/chat/completions`` (``chat``) or ``/v1/completions`` body asks for."""
    if not isinstance(body, dict):
        raise ApiError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError("model is required: a string (GET /v1/models lists it)", param="model")
    if model != served:
        raise ApiError(
            f"the model {model!r} does not exist here; this network serves {served!r}",
            status=404,
            param="model",
            code="model_not_found",
        )
    for name, allowed in UNSUPPORTED.items():
        if name in body and body[name] not in allowed:
            raise ApiError(f"{name} is not supported by this network", param=name)
    if _integer(body, "n", 1, 1, 1 << 30) != 1:
        raise ApiError("n must be 1: one choice per request", param="n")
    messages = prompt = None
    if chat:
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise ApiError("messages is required: a non-empty list", param="messages")
        checked = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "developer"):
                raise ApiError(f"messages[{i}] needs a role: system, user, assistant or developer", param="messages")
            role = "system" if m["role"] == "developer" else m["role"]
            checked.append({"role": role, "content": _text(m.get("content"), f"messages[{i}].content")})
        messages = tuple(checked)
    else:
        raw = body.get("prompt")
        if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str):
            raw = raw[0]
        if not isinstance(raw, str):
            raise ApiError("prompt is required: one string", param="prompt")
        prompt = raw
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    default = default_max_tokens if chat else 16
    tokens = _integer({"max_tokens": limit}, "max_tokens", default, 1, max_tokens)
    stop = body.get("stop")
    stop = () if stop is None else (stop,) if isinstance(stop, str) else stop
    if not isinstance(stop, (list, tuple)) or len(stop) > MAX_STOP or not all(isinstance(s, str) and s for s in stop):
        raise ApiError(f"stop must be a string or a list of at most {MAX_STOP} non-empty strings", param="stop")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError("stream must be true or false", param="stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
        raise ApiError("stream_options must be an object with a boolean include_usage", param="stream_options")
    return Generation(
        model=model,
        messages=messages,
        prompt=prompt,
        max_tokens=tokens,
        temperature=_number(body, "temperature", 1.0, 0.0, 2.0),
        top_p=_number(body, "top_p", 1.0, 0.0, 1.0) or 1e-6,
        seed=_integer(body, "seed", None, -(1 << 63), (1 << 63) - 1),
        stop=tuple(stop),
        stream=stream,
        include_usage=bool(options.get("include_usage", False)),
    )
