"""``efedllm verifier``: ``run`` checks servers' committed work each epoch and puts their accuracies on chain;
``status``, ``stake``, ``unstake``, ``withdraw``, ``claim`` and ``penalize`` manage the verifier's stake, its pay
and other verifiers' penalties (verifier_account.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from efedllm import DATA_DIR
from efedllm.cli import verifier_account
from efedllm.cli.common import StopSignal, add_chain_options, add_logging_options, open_protocol, setup_logging
from efedllm.cli.flags import add_dataclass_options, dataclass_from_args
from efedllm.errors import EfedError
from efedllm.model.source import DEFAULT_MODEL
from efedllm.verifier.config import VerifierAccount, VerifyConfig
from efedllm.verifier.inbox import InboxConfig


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verifier", help="verify servers' work each epoch and submit their scores; manage the verifier's stake"
    )
    commands = parser.add_subparsers(dest="verifier_command", required=True, metavar="ACTION")
    _register_run(commands)
    verifier_account.register(commands)


def _register_run(commands) -> None:
    parser = commands.add_parser("run", help="verify servers' work each epoch and submit their scores")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the model to verify against (default: %(default)s)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(DATA_DIR),
        help="where the verifier keeps its commit/reveal state (default: %(default)s)",
    )
    add_dataclass_options(parser, VerifyConfig)
    add_dataclass_options(parser, VerifierAccount)
    add_dataclass_options(parser, InboxConfig)
    parser.add_argument(
        "--softmax",
        choices=("exact", "lut"),
        default="exact",
        help="attention softmax when recomputing: exact (fused kernel) or lut (paper eq. 21-22: shift, "
        "K-digit base-b lookup tables, split across workers; docs/SOFTMAX.md) (default: %(default)s)",
    )
    parser.add_argument("--softmax-digits", type=int, default=4, help="K for --softmax lut (default: %(default)s)")
    parser.add_argument("--softmax-base", type=int, default=16, help="b for --softmax lut (default: %(default)s)")
    parser.add_argument(
        "--softmax-workers",
        type=int,
        default=2,
        help="workers the exponentials and sums are split across (default: %(default)s)",
    )
    parser.add_argument(
        "--lie",
        choices=("always-0", "always-1"),
        default=None,
        help="TEST AID: report this accuracy for every server whatever the checks say (default: off)",
    )
    add_logging_options(parser)
    add_chain_options(parser, signs=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    say = setup_logging(args, name="efedllm.verifier")
    if args.samples < 0 or args.canaries < 0 or args.canary_steps < 0 or not args.tolerance > 0:
        raise EfedError("--samples, --canaries and --canary-steps must not be negative; --tolerance must be positive")
    if not 0 <= args.grouped_canaries <= 1 or args.canary_group < 2:
        raise EfedError("--grouped-canaries must be between 0 and 1, and --canary-group at least 2")
    stop = StopSignal()
    protocol = open_protocol(args, signs=True)
    if not protocol.is_verifier(protocol.signer.address):
        raise EfedError(f"{protocol.signer.address} does not hold the verifier role on chain; the governor grants it")
    from efedllm.verifier.stake import ensure_stake

    account = dataclass_from_args(VerifierAccount, args)
    ensure_stake(protocol, account.stake, say=say)
    from efedllm.verifier.canaries import load_canary_signer

    canary = load_canary_signer(protocol, account)
    if canary is not None and account.canary_deposit:
        from efedllm.chain.protocol import Protocol
        from efedllm.verifier.stake import ensure_canary_deposit

        ensure_canary_deposit(Protocol(protocol.w3, protocol.deployment, canary), account.canary_deposit, say=say)
    say(
        f"canaries pay priced servers from {canary.address}"
        if canary
        else "no canary account: priced servers get no canaries (--canary-keystore)"
    )
    from transformers import AutoTokenizer  # torch and transformers load only for this command

    from efedllm.verifier.daemon import Verifier
    from efedllm.verifier.reference import ReferenceModel

    softmax = None
    if args.softmax == "lut":
        from efedllm.verifier.softmax import LutSoftmax, SoftmaxConfig

        softmax = LutSoftmax(
            config=SoftmaxConfig(digits=args.softmax_digits, base=args.softmax_base, workers=args.softmax_workers)
        )
    model = ReferenceModel(args.model, device=args.device, softmax=softmax, progress=say)
    tokenizer = AutoTokenizer.from_pretrained(model.folder)
    config = dataclass_from_args(VerifyConfig, args)
    from efedllm.verifier.inbox import open_inbox

    inbox, service = open_inbox(protocol, dataclass_from_args(InboxConfig, args), data_dir=args.data_dir, say=say)
    verifier = Verifier(
        protocol,
        model,
        tokenizer,
        config,
        data_dir=args.data_dir,
        progress=say,
        penalize=account.penalize,
        inbox=inbox,
        canary_account=canary,
    )
    if args.lie:  # a test aid, installed from here only
        from efedllm.aids.lies import install_verifier_aid

        install_verifier_aid(verifier, args.lie, progress=say)
    say(f"verifier {verifier.me} running; state in {verifier.state.path}")
    try:
        verifier.run(stop.event)
    finally:
        if service is not None:
            service.stop()
    say("verifier stopped")
    return 0
