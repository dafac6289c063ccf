"""``efedllm generate``: run a prompt through the network and stream the answer; ``--chat`` keeps talking."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from efedllm.cli.common import add_chain_options, add_signer_options, open_protocol
from efedllm.cli.flags import add_dataclass_options, dataclass_from_args
from efedllm.client.sampling import Sampling
from efedllm.client.spotcheck import SpotCheck
from efedllm.errors import EfedError
from efedllm.model.source import DEFAULT_MODEL


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="generate text through the network's servers")
    parser.add_argument(
        "prompt",
        nargs="?",
        default=None,
        help="the prompt (sent through the model's chat template unless --no-chat); with --chat, "
        "the first message (default: none; required without --chat)",
    )
    parser.add_argument(
        "--chat",
        action="store_true",
        help="interactive chat: keeps the conversation, streams each answer; /exit, Ctrl-D or "
        "Ctrl-C ends it (default: off)",
    )
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="packaged model name or Hugging Face folder (default: %(default)s)"
    )
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding (default: greedy)")
    add_dataclass_options(parser, Sampling)
    parser.add_argument(
        "--no-chat",
        action="store_true",
        help="send the prompt as raw text, without the chat template (default: chat template)",
    )
    parser.add_argument(
        "--servers",
        default=None,
        metavar="URL,URL",
        help="use these servers instead of the chain's list (development; default: the chain's)",
    )
    parser.add_argument("--show-route", action="store_true", help="print the route used (default: off)")
    parser.add_argument(
        "--pay",
        action="store_true",
        help="pay priced servers with signed receipts from this account's deposit (efedllm client deposit); "
        "without it only free servers serve (default: off)",
    )
    add_dataclass_options(parser, SpotCheck)
    add_chain_options(parser, signs=False)
    add_signer_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.prompt is None and not args.chat:
        raise EfedError("give a prompt, or --chat for an interactive chat")
    if args.chat and args.no_chat:
        raise EfedError("--chat needs the chat template: drop --no-chat")
    from efedllm.client import DistributedModel  # torch and transformers load only for this command

    servers = args.servers.split(",") if args.servers else None
    protocol = None if servers else open_protocol(args, signs=args.pay)
    model = DistributedModel.from_pretrained(
        args.model,
        protocol=protocol,
        servers=servers,
        spot=dataclass_from_args(SpotCheck, args),
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )
    if args.chat:
        return chat(model, args)
    answer(model, args, prompt=args.prompt)
    return 0


def answer(model, args: argparse.Namespace, *, prompt: str | None = None, messages: list[dict] | None = None) -> str:
    """Generate one answer, streaming it to stdout; returns its text."""
    printer = StreamPrinter(model.tokenizer)
    model.generate(
        prompt=prompt,
        messages=messages,
        chat=not args.no_chat,
        do_sample=args.sample,
        **asdict(dataclass_from_args(Sampling, args)),
        on_token=printer,
    )
    print(flush=True)
    if model.last_hit_limit:
        limit = args.max_new_tokens
        print(f"(stopped at the {limit}-token limit; --max-new-tokens raises it)", file=sys.stderr, flush=True)
    if args.show_route:
        for hop in model.last_route:
            print(f"  layers {hop.start}:{hop.end} on {hop.peer.endpoint} ({hop.peer.serving})", file=sys.stderr)
        if model.last_failovers:
            print(f"  failovers: {model.last_failovers}", file=sys.stderr)
    return printer.text()


def chat(model, args: argparse.Namespace) -> int:
    """Read a message, answer it with the whole conversation as context, repeat. Each answer runs a fresh
    session through the network (the servers keep no conversation), so the prompt grows with each turn."""
    print("chat through the network: /exit or Ctrl-D to end, /reset to start over", file=sys.stderr, flush=True)
    messages: list[dict] = []
    pending = args.prompt
    try:
        while True:
            if pending is not None:
                text, pending = pending, None
                print(f"> {text}", flush=True)
            else:
                try:
                    text = input("> ")
                except EOFError:
                    print(flush=True)
                    return 0
            text = text.strip()
            if text in ("/exit", "/quit"):
                return 0
            if text == "/reset":
                messages.clear()
                continue
            if not text:
                continue
            messages.append({"role": "user", "content": text})
            messages.append({"role": "assistant", "content": answer(model, args, messages=messages).strip()})
    except KeyboardInterrupt:  # Ctrl-C ends the chat cleanly, mid-answer included (the session closes itself)
        print(flush=True)
        return 0


class StreamPrinter:
    """Prints text as tokens arrive: decodes everything so far and writes what is new (tokens can merge)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.tokens, self.shown = tokenizer, [], 0

    def text(self) -> str:
        return self.tokenizer.decode(self.tokens, skip_special_tokens=True)

    def __call__(self, token: int) -> None:
        self.tokens.append(token)
        text = self.text()
        if len(text) > self.shown and not text.endswith("\ufffd"):
            sys.stdout.write(text[self.shown :])
            sys.stdout.flush()
            self.shown = len(text)
