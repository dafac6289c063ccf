"""``efedllm generate``: run a prompt through the network and stream the answer."""

from __future__ import annotations

import argparse
import sys

from efedllm.cli.common import add_chain_options, open_protocol
from efedllm.model.source import DEFAULT_MODEL


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="generate text through the network's servers")
    parser.add_argument("prompt", help="the prompt (sent through the model's chat template unless --no-chat)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="packaged model name or Hugging Face folder (default: %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=0, help="sample from the k most likely tokens; 0: all (default: %(default)s)")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=None, help="random seed for sampling (default: none)")
    parser.add_argument("--no-chat", action="store_true", help="send the prompt as raw text, without the chat template")
    parser.add_argument("--servers", default=None, metavar="URL,URL",
                        help="use these servers instead of the chain's list (development)")
    parser.add_argument("--show-route", action="store_true", help="print the route used")
    add_chain_options(parser, signs=False)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from efedllm.client import DistributedModel  # torch and transformers load only for this command

    servers = args.servers.split(",") if args.servers else None
    protocol = None if servers else open_protocol(args, signs=False)
    model = DistributedModel.from_pretrained(args.model, protocol=protocol, servers=servers,
                                             progress=lambda m: print(m, file=sys.stderr, flush=True))
    printer = StreamPrinter(model.tokenizer)
    model.generate(prompt=args.prompt, chat=not args.no_chat, max_new_tokens=args.max_new_tokens,
                   do_sample=args.sample, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   seed=args.seed, on_token=printer)
    print(flush=True)
    if args.show_route:
        for hop in model.last_route:
            print(f"  layers {hop.start}:{hop.end} on {hop.peer.endpoint}", file=sys.stderr)
        if model.last_failovers:
            print(f"  failovers: {model.last_failovers}", file=sys.stderr)
    return 0


class StreamPrinter:
    """Prints text as tokens arrive: decodes everything so far and writes what is new (tokens can merge)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.tokens, self.shown = tokenizer, [], 0

    def __call__(self, token: int) -> None:
        self.tokens.append(token)
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if len(text) > self.shown and not text.endswith("\ufffd"):
            sys.stdout.write(text[self.shown:])
            sys.stdout.flush()
            self.shown = len(text)
