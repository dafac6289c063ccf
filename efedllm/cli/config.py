"""A TOML file of flag defaults: ``--config FILE`` on any subcommand, or ``$EFEDLLM_CONFIG``.

Keys are flag names without the dashes (``rpc-url``, ``layers``; ``rpc_url`` works too). Keys at the top apply
to every subcommand that has such a flag; a table named after a subcommand (``[verifier.run]``, ``[server.run]``)
applies to it alone and wins over the keys above it. The values become argparse defaults, so a flag given on
the command line still wins, and every value is checked as if it had been typed::

    rpc-url = "https://rpc.example.org"
    deployment = "/etc/efedllm/deployment.json"

    [server.run]
    layers = "0:10"
    data-dir = "/var/lib/efedllm"
    log-json = true

A private key never goes into this file (it would sit in plain text next to the flags): keys named like one,
and values that look like one, are refused. Use ``$EFEDLLM_PRIVATE_KEY`` or ``--keystore``.

Keys, types, choices and defaults are read from the parser's own flags, which cli/flags.py generates from the
config dataclasses: the file, the command line and the dataclasses share one source.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from efedllm.errors import EfedError

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

CONFIG_ENV = "EFEDLLM_CONFIG"
SECRET_NAMES = re.compile(r"^(.*[-_])?(private[-_]?key|key|secret|mnemonic|seed[-_]?phrase|password)$")
SECRET_VALUE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def install(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` and every subcommand under it a ``--config`` flag (read by ``apply`` before parsing)."""
    for sub in _walk(parser):
        sub.add_argument(
            "--config",
            metavar="FILE",
            default=argparse.SUPPRESS,
            help=f"TOML file of flag defaults; flags given here still win (default: ${CONFIG_ENV} if set, else none)",
        )


def apply(parser: argparse.ArgumentParser, argv: list[str]) -> Path | None:
    """Load the config file named by ``argv`` or ``$EFEDLLM_CONFIG`` into the defaults of the subcommand that
    ``argv`` invokes; returns the file used. Raises EfedError for a missing or malformed file or a bad key."""
    path = _config_path(argv)
    if path is None:
        return None
    data = _load(path)
    _check_everything(parser, data, path)
    chain = _invoked(parser, argv)
    where, table = [], data
    values: dict[str, tuple[Any, str]] = {}
    for depth, (name, _) in enumerate(chain):
        if depth:
            where.append(name)
            table = table.get(name, {})
            if not isinstance(table, dict):  # a flag's value that shares a subcommand's name (deploy's `verifier`)
                table = {}
        for key, value in table.items():
            if not isinstance(value, dict):
                values[key.replace("_", "-")] = (value, ".".join([*where, key]))
    leaf = chain[-1][1]
    options = {s[2:]: a for a in leaf._actions for s in a.option_strings if s.startswith("--")}
    defaults = {}
    for key, (value, shown) in values.items():
        action = options.get(key)
        if action is None or key in ("config", "help", "version"):
            continue  # a top-level or parent-table key for flags this subcommand does not have
        defaults[action.dest] = _convert(action, value, f"{path}: {shown}")
        action.required = False
    leaf.set_defaults(**defaults)
    return path


def _config_path(argv: list[str]) -> Path | None:
    for i, token in enumerate(argv):
        if token == "--":
            break
        if token == "--config":
            if i + 1 >= len(argv):
                raise EfedError("--config needs a FILE")
            return Path(argv[i + 1])
        if token.startswith("--config="):
            return Path(token.split("=", 1)[1])
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else None


def _load(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise EfedError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise EfedError(f"config file {path} is not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise EfedError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None


def _invoked(parser: argparse.ArgumentParser, argv: list[str]) -> list[tuple[str, argparse.ArgumentParser]]:
    """The parser chain ``argv`` selects: [("efedllm", root), ("server", ...), ("run", ...)]."""
    chain = [(parser.prog, parser)]
    skip = False
    for token in argv:
        if skip:
            skip = False
            continue
        if token == "--config":
            skip = True
            continue
        choices = _subcommands(chain[-1][1])
        if token in choices:
            chain.append((token, choices[token]))
    return chain


def _check_everything(parser: argparse.ArgumentParser, data: dict, path: Path, where: tuple[str, ...] = ()) -> None:
    """Refuse secrets anywhere, tables naming no subcommand, keys that no flag below their table has and values
    such a flag would not take, whichever subcommand runs now: a typo must not wait for the day it is used."""
    flags: dict[str, argparse.Action] = {}
    for sub in _walk(parser):
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--"):
                    flags.setdefault(option[2:], action)
    children = _subcommands(parser)
    for key, value in data.items():
        shown = ".".join([*where, key])
        name = key.replace("_", "-")
        values = value if isinstance(value, list) else [value]
        if SECRET_NAMES.match(name.lower()) or any(
            isinstance(v, str) and SECRET_VALUE.match(v.strip()) for v in values
        ):
            raise EfedError(
                f"{path}: refusing {shown!r}: a private key never goes in a config file; "
                f"use $EFEDLLM_PRIVATE_KEY or --keystore"
            )
        if isinstance(value, dict):
            if key not in children:
                raise EfedError(
                    f"{path}: [{shown}] names no subcommand (expected one of: {', '.join(children) or 'none'})"
                )
            _check_everything(children[key], value, path, (*where, key))
        elif name not in flags or name in ("config", "help", "version"):
            raise EfedError(
                f"{path}: unknown key {shown!r}: no such flag" + (f" under `{' '.join(where)}`" if where else "")
            )
        else:
            _convert(flags[name], value, f"{path}: {shown}")


def _convert(action: argparse.Action, value: Any, shown: str) -> Any:
    """``value`` checked and converted as argparse would convert the flag typed on the command line."""
    if action.nargs == 0:  # store_true / store_false
        if not isinstance(value, bool):
            raise EfedError(f"{shown} must be true or false, got {value!r}")
        return value if action.const is True else not value
    many = action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction)
    if many:
        if not isinstance(value, list):
            raise EfedError(f"{shown} must be a list, got {value!r}")
        return [_scalar(action, v, shown) for v in value]
    return _scalar(action, value, shown)


def _scalar(action: argparse.Action, value: Any, shown: str) -> Any:
    if isinstance(value, (dict, list, bool)):
        raise EfedError(f"{shown} must be a single value, got {value!r}")
    text = str(value)
    try:
        converted = action.type(text) if action.type else text
    except (TypeError, ValueError):
        raise EfedError(f"{shown}: invalid value {value!r}") from None
    if action.choices is not None and converted not in action.choices:
        raise EfedError(f"{shown} must be one of {', '.join(map(str, action.choices))}, got {value!r}")
    return converted


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _walk(parser: argparse.ArgumentParser):
    yield parser
    seen = set()
    for sub in _subcommands(parser).values():
        if id(sub) not in seen:  # aliases map several names to one parser
            seen.add(id(sub))
            yield from _walk(sub)
