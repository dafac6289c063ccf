"""Every route a server (and a verifier's answer inbox) answers, named once: the services register these; every
client builds its URLs here."""

from __future__ import annotations

INFO = "/info"
"""``GET``: what this server serves and how fast (messages.ServerInfo)."""
SESSIONS = "/sessions"
"""``POST``: open a session (messages.OpenSession -> messages.SessionOpened)."""
SESSION = "/sessions/{session_id}"
"""``DELETE``: close a session (the aiohttp pattern; ``session(id)`` is a concrete path)."""
FORWARD = "/sessions/{session_id}/forward"
"""``POST``: run hidden states (efedllm/wire.py) through a session (``forward(id)`` is a concrete path)."""
STEPS = "/steps"
"""``POST``: one decode step of each of several sessions in one request (efedllm/wire.py ``encode_steps``): a client
process's concurrent sessions, sent together (client/lockstep.py) and run as one batch."""
OPENINGS = "/openings"
"""``POST``: reveal a committed task to a verifier (efedllm/openings.py; servers on chain only)."""

ANSWERS = "/answers"
"""A verifier's inbox: ``POST`` hand it signed answers; ``GET ?epoch=N`` the answers it took (verifier/inbox.py)."""

API_MODELS = "/v1/models"
"""``efedllm api`` (OpenAI-compatible): ``GET`` the models the network serves."""
API_MODEL = "/v1/models/{model}"
"""``GET``: one model (the aiohttp pattern)."""
API_CHAT = "/v1/chat/completions"
"""``POST``: a chat completion, streamed (server-sent events) or not (api/bodies.py)."""
API_COMPLETIONS = "/v1/completions"
"""``POST``: a text completion, streamed or not."""


def session(session_id: str) -> str:
    return SESSION.format(session_id=session_id)


def forward(session_id: str) -> str:
    return FORWARD.format(session_id=session_id)
