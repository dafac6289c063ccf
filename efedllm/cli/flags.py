"""Command-line flags generated from config dataclasses, so that a default, a type, a choice or a help text is
written once, in the dataclass that owns it, and the CLI and the ``--config`` TOML file (cli/config.py, which
reads the flags back from the parser) cannot drift from it.

Each field becomes ``--kebab-name`` with
- its default: the dataclass default;
- its type, from the annotation: int, float, str, Path; ``X | None`` takes X; ``tuple[X, ...]`` takes one or more;
  bool becomes ``--x`` (``--x`` / ``--no-x`` when it defaults to true);
- its choices: ``field(metadata={"choices": ...})``, or the values of a ``Literal``;
- its help: ``metadata["help"]``, else the attribute docstring under the field (read from the source with
  ``ast``; first paragraph), with "(default: ...)" appended; ``metadata["default_help"]`` replaces the shown
  default, e.g. what None means ("cuda when present, else cpu"); it is argparse text, so it may use %(default)s
  (docstrings are plain text: their % is escaped);
- ``metadata["metavar"]``;
- its type: ``metadata["parse"]`` (text -> value, ValueError when invalid) when the flag is typed in another unit
  than the field holds (an ETH amount for wei); the default stays the field's value.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import textwrap
import typing
from dataclasses import MISSING, fields, is_dataclass
from functools import cache
from itertools import pairwise
from types import NoneType, UnionType
from typing import Any, Literal


def flag(name: str) -> str:
    return f"--{name.replace('_', '-')}"


def add_dataclass_options(
    parser,
    cls,
    *,
    skip=(),
    only=None,
    help: dict[str, str] | None = None,
    choices: dict[str, tuple] | None = None,
    defaults: dict[str, Any] | None = None,
) -> None:
    """Add one flag per field of ``cls`` to ``parser`` (or an argument group): all fields but ``skip``, or those
    in ``only``; ``help``, ``choices`` and ``defaults`` override what the dataclass says for some fields."""
    docs, hints = field_docs(cls), typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in skip or (only is not None and f.name not in only):
            continue
        default = (defaults or {}).get(f.name, _default(f))
        kind = _unwrap(hints[f.name])
        text = (help or {}).get(f.name) or f.metadata.get("help") or docs.get(f.name)
        if not text:
            raise TypeError(f"{cls.__name__}.{f.name} has no help: give it a docstring or metadata['help']")
        options: dict[str, Any] = {"default": default}
        shown = None
        if kind is bool:
            shown = f.metadata.get("default_help") or ("on" if default else "off")
            options["action"] = argparse.BooleanOptionalAction if default else "store_true"
        else:
            if typing.get_origin(kind) is tuple:  # tuple[float, ...]: one or more values
                kind = typing.get_args(kind)[0]
                options.update(nargs="+", default=list(default))
                shown = " ".join(map(str, default))
            literal = typing.get_args(kind) if typing.get_origin(kind) is Literal else None
            parse = f.metadata.get("parse")
            options["type"] = (
                _named(parse, f.metadata.get("metavar")) if parse else type(literal[0]) if literal else kind
            )
            picks = (choices or {}).get(f.name) or f.metadata.get("choices") or literal
            if picks:
                options["choices"] = picks
            if "metavar" in f.metadata:
                options["metavar"] = f.metadata["metavar"]
            shown = f.metadata.get("default_help") or shown or ("none" if default is None else "%(default)s")
        options["help"] = text if "(default" in text else f"{text} (default: {shown})"
        parser.add_argument(flag(f.name), **options)


def dataclass_from_args(cls, args: argparse.Namespace, **overrides):
    """``cls`` built from the parsed flags that ``add_dataclass_options`` added (fields without a flag keep
    their default unless ``overrides`` gives them)."""
    values = {f.name: getattr(args, f.name) for f in fields(cls) if f.init and hasattr(args, f.name)}
    return cls(**{**values, **overrides})


@cache
def field_docs(cls) -> dict[str, str]:
    """The attribute docstrings of ``cls`` and its dataclass bases: the string literal right under a field,
    first paragraph, on one line, lower case first and with % escaped, as argparse help."""
    docs: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        if not is_dataclass(base) or base is object:
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(base)))
        body = tree.body[0].body
        for node, after in pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                text = " ".join(inspect.cleandoc(after.value.value).split("\n\n")[0].split()).replace("``", "`")
                if text[1:2].islower():  # "Port to listen on" -> "port ...", as the other flags; "KV-cache" stays
                    text = text[0].lower() + text[1:]
                docs[node.target.id] = text.rstrip(".").replace("%", "%%")
    return docs


def _default(f):
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def _named(parse, name: str | None):
    """``parse`` under the name argparse shows when it refuses a value ("invalid ETH value: 'x'")."""

    def convert(text: str):
        return parse(text)

    convert.__name__ = name or parse.__name__
    return convert


def _unwrap(hint):
    """The type a flag converts to: X for ``X | None`` (None is then the default, not a value to type)."""
    if typing.get_origin(hint) in (typing.Union, UnionType):
        args = [a for a in typing.get_args(hint) if a is not NoneType]
        if len(args) == 1:
            return args[0]
    return hint
