"""What one receipt or signed answer costs to hash, sign and check, in this process, beside eth_account's way.

    python bench/receipts.py [--count 3000]

Both sides of every paid step do these (the client signs its receipt and checks the server's signed answer; the
server checks the receipt and signs its answer), so they sit on each step's path (efedllm/receipts.py). The
reference column is eth_account's general EIP-712 encoder and its signing and recovery (eth-keys), timed on the
same messages in the same run (eth-keys signs with coincurve too when it is installed, as it is here; without it,
in pure Python, a signature took 4.2 ms and a recovery 7.1 ms on this machine).
"""

from __future__ import annotations

import argparse
import time

from eth_account import Account
from eth_account.messages import encode_typed_data

from efedllm.chain.connection import Signer
from efedllm.cli.common import table
from efedllm.receipts import UNPAID, Answer, AnswerDomain, Receipt, ReceiptDomain, TypedSigner


def per_call_ms(fn, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        fn()
    return (time.perf_counter() - started) / count * 1000


def measure(domain, message, *, account, signer: TypedSigner, count: int) -> tuple[dict, dict]:
    """Milliseconds per digest, signature and recovery of ``message``: ours, then eth_account's."""
    data = domain.data(message)
    signature = signer.sign(domain, message)
    encoded = encode_typed_data(full_message=data)
    fewer = max(1, count // 10)  # the reference is slower
    ours = {
        "digest": per_call_ms(lambda: domain.digest(message), count),
        "sign": per_call_ms(lambda: signer.sign(domain, message), count),
        "recover": per_call_ms(lambda: domain.recover(message, signature), count),
    }
    theirs = {
        "digest": per_call_ms(lambda: encode_typed_data(full_message=data), fewer),
        "sign": per_call_ms(lambda: account.sign_message(encoded), fewer),
        "recover": per_call_ms(lambda: Account.recover_message(encoded, signature=signature), fewer),
    }
    return ours, theirs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=3000)
    args = parser.parse_args()
    account = Account.from_key(b"\x01" * 32)
    signer = TypedSigner(None, Signer(account.address, account))
    cases = {
        "receipt": (
            ReceiptDomain(chain_id=31337, contract="0x" + "22" * 20),
            Receipt(client=account.address, server="0x" + "33" * 20, epoch=7, amount=123_456_789),
        ),
        "answer": (
            AnswerDomain(chain_id=31337, contract="0x" + "44" * 20),
            Answer(
                epoch=7,
                index=42,
                session=b"\x05" * 32,
                step=3,
                start=10,
                end=20,
                past=40,
                prefix_hash=b"\x06" * 32,
                input_hash=b"\x07" * 32,
                output_hash=b"\x08" * 32,
                receipt=UNPAID,
            ),
        ),
    }
    rows = []
    for name, (domain, message) in cases.items():
        ours, theirs = measure(domain, message, account=account, signer=signer, count=args.count)
        for op in ours:
            rows.append([name, op, f"{ours[op]:.3f}", f"{theirs[op]:.3f}", f"{theirs[op] / ours[op]:.0f}x"])
    print(table(["message", "operation", "efedllm ms", "eth_account ms", "eth_account / efedllm"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
