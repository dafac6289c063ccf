"""``efedllm account new|list``: make the encrypted keystore that ``--keystore FILE`` signs with, and find them.

The password never goes on the command line: it comes from $EFEDLLM_KEYSTORE_PASSWORD (as when the keystore is
used) or is typed twice at a prompt. The key itself is never printed.
"""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from efedllm.chain.connection import KEYSTORE_PASSWORD_ENV
from efedllm.chain.keystores import KEYSTORE_DIR_ENV, create_keystore, keystores_dir, list_keystores
from efedllm.cli.common import table
from efedllm.errors import EfedError


def register(subparsers) -> None:
    parser = subparsers.add_parser("account", help="create and list encrypted keystores (the keys --keystore uses)")
    commands = parser.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    new = commands.add_parser("new", help="create a new key in an encrypted JSON keystore and print its address")
    new.add_argument(
        "--keystore",
        type=Path,
        default=None,
        metavar="PATH",
        help=f"write the keystore to PATH (default: <address>.json in ${KEYSTORE_DIR_ENV} or ~/.efedllm/keystores)",
    )
    new.set_defaults(run=run_new)
    list_ = commands.add_parser("list", help="list the keystores in a folder: address and file")
    list_.add_argument(
        "--dir", type=Path, default=None, help=f"the folder (default: ${KEYSTORE_DIR_ENV} or ~/.efedllm/keystores)"
    )
    list_.set_defaults(run=run_list)


def run_new(args: argparse.Namespace) -> int:
    password = os.environ.get(KEYSTORE_PASSWORD_ENV)
    if password is None:
        password = getpass.getpass("Password for the new keystore: ")
        if getpass.getpass("The same password again: ") != password:
            raise EfedError("the two passwords differ; nothing written")
    keystore = create_keystore(password, path=args.keystore)
    print(f"created {keystore.address} in {keystore.path}")
    print(
        f"sign with it: --keystore {keystore.path} (password from ${KEYSTORE_PASSWORD_ENV} or a prompt); "
        f"keep a copy of the file and the password: without both the key is lost",
        flush=True,
    )
    return 0


def run_list(args: argparse.Namespace) -> int:
    directory = args.dir or keystores_dir()
    found, others = list_keystores(directory)
    if not found:
        print(f"no keystores in {directory}; create one with `efedllm account new`")
    else:
        print(table(["address", "file"], [[k.address, k.path] for k in found]))
    if others:
        print(f"({len(others)} other JSON file(s) in {directory} are not keystores)")
    return 0
