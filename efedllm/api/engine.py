"""Runs the API's generations through the network: one ``DistributedModel`` (the model's ends, the peers, the
payer) shared by worker threads, one inference session per request.

Text is streamed as it becomes final: a token's text is held back while it ends in an incomplete UTF-8 character
(the tokenizer decodes it to U+FFFD) and while the text could still be the start of a stop sequence, so a stop
sequence never reaches the client and is cut where it begins, as OpenAI does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from efedllm.api.bodies import Generation


class Cancelled(Exception):
    """Raised inside a generation's token callback to end it early (a stop sequence, or the client went away)."""


@dataclass(frozen=True, kw_only=True)
class Result:
    text: str
    finish_reason: str
    """``stop`` (an end-of-sequence token or a stop sequence) or ``length`` (``max_tokens`` reached)."""
    prompt_tokens: int
    completion_tokens: int
    seconds: float


class TextStream:
    """Turns token ids into the text increments safe to send, and finds stop sequences."""

    def __init__(self, tokenizer, stop: tuple[str, ...]):
        self.tokenizer, self.stop = tokenizer, stop
        self.ids: list[int] = []
        self.sent = 0
        """Characters of the decoded text sent so far."""
        self.stopped = False

    def text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True)

    def push(self, token: int) -> str:
        """The new text that may go out after ``token``; sets ``stopped`` when a stop sequence appeared."""
        self.ids.append(token)
        text = self.text()
        found = [at for s in self.stop if (at := text.find(s, self.sent)) != -1]
        if found:
            self.stopped = True
            return self._advance(text, min(found))
        safe = len(text)
        if text.endswith("\ufffd"):  # an incomplete character: wait for the rest of its bytes
            safe = len(text.rstrip("\ufffd"))
        for s in self.stop:  # the text's end may be the start of a stop sequence
            for k in range(min(len(s) - 1, safe), 0, -1):
                if text[:safe].endswith(s[:k]):
                    safe -= k
                    break
        return self._advance(text, max(safe, self.sent))

    def flush(self) -> str:
        """What is left to send at the end (a held-back prefix of a stop sequence that never came)."""
        return "" if self.stopped else self._advance(self.text(), len(self.text()))

    def final(self) -> str:
        """The whole answer: the text up to the first stop sequence, if one came."""
        text = self.text()
        found = [text.find(s) for s in self.stop if s in text]
        return text[: min(found)] if self.stopped and found else text

    def _advance(self, text: str, upto: int) -> str:
        piece = text[self.sent : upto]
        self.sent = max(self.sent, upto)
        return piece


class Engine:
    def __init__(self, model):
        self.model = model
        self.tokenizer = model.tokenizer

    def run(
        self, request: Generation, *, on_text: Callable[[str], None] | None = None, cancelled=lambda: False
    ) -> Result:
        """Generate for ``request`` in this thread; ``on_text`` gets each safe increment of text (streaming);
        ``cancelled()`` is asked after every token (the client went away)."""
        started = time.monotonic()
        stream = TextStream(self.tokenizer, request.stop)
        messages = list(request.messages) if request.messages is not None else None
        input_ids = self.model.encode(prompt=request.prompt, messages=messages, chat=request.chat)
        count = 0

        def on_token(token: int) -> None:
            nonlocal count
            count += 1
            piece = stream.push(token)
            if piece and on_text is not None:
                on_text(piece)
            if stream.stopped or cancelled():
                raise Cancelled

        sampled = request.temperature > 0
        try:
            self.model.generate(
                input_ids,
                max_new_tokens=request.max_tokens,
                do_sample=sampled,
                temperature=request.temperature if sampled else 1.0,
                top_p=request.top_p if sampled else 1.0,
                seed=None if request.seed is None else request.seed & ((1 << 63) - 1),
                on_token=on_token,
            )
            finish = "length" if count >= request.max_tokens and not self._ended(stream) else "stop"
        except Cancelled:
            finish = "stop"
        if on_text is not None and (rest := stream.flush()):
            on_text(rest)
        return Result(
            text=stream.final(),
            finish_reason=finish,
            prompt_tokens=int(input_ids.shape[1]),
            completion_tokens=count,
            seconds=time.monotonic() - started,
        )

    def _ended(self, stream: TextStream) -> bool:
        """Whether the last token was an end-of-sequence token (a stop, even at the limit)."""
        return bool(stream.ids) and stream.ids[-1] in self.model.eos_ids()
