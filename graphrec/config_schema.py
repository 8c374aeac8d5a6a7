"""The config schema: typed dataclass fields with docs and ranges, filled from plain mappings.

Every config of graphrec (runs, experiments, searches, pipelines) and every model's own
settings are dataclasses whose fields are declared with :func:`doc`; :func:`from_dict`
builds one from YAML-loaded values, checking keys, types and ranges, and
:func:`section_rows` renders the reference tables.  This module knows no config in
particular and imports nothing of graphrec but its errors, so the models (which declare
their settings with :func:`doc`) sit above it and :mod:`graphrec.config`, which knows the
model registry, sits above them.

Values are parsed with ``yaml.safe_load`` and checked against the field types;
nothing is ever evaluated as code.  Unknown keys and wrong types raise
:class:`~graphrec.errors.ConfigError` naming the key and listing the valid ones.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Any, Literal

import yaml

from graphrec.errors import ConfigError

#: builds a polymorphic section (e.g. ``model``, whose ``name`` selects its class) from its mapping and key
SectionBuilder = Callable[[Any, str], Any]


def doc(
    text: str,
    default: Any = dataclasses.MISSING,
    default_factory: Any = dataclasses.MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Sequence[str] | None = None,
    pattern: str | None = None,
    path: bool = False,
    build: SectionBuilder | None = None,
) -> Any:
    """A dataclass field with a one-line documentation string and its valid range.

    ``ge`` / ``gt`` / ``le`` / ``lt`` bound a number (each element of a list of numbers),
    ``choices`` and ``pattern`` (a full-match regex) restrict a string (each element of a
    list of strings); ``path`` marks a file or folder name, whose parts must fit the file
    system (255 bytes each).  :func:`check_field` enforces them for every field when a
    config is built; floats must always be finite and strings at most
    :data:`MAX_STRING` characters.  ``null`` (where the type allows it) is never checked.
    ``build`` marks a polymorphic section (``model``, whose ``name`` selects its class):
    :func:`from_dict` hands its value to ``build(value, key)`` instead of the field's type.
    """
    metadata: dict[str, Any] = {"doc": text}
    if path:
        metadata["path"] = True
    if build is not None:
        metadata["build"] = build
    for key, value in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt), ("pattern", pattern)):
        if value is not None:
            metadata[key] = value
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


#: longest string a config value may be (a path is at most 4096 bytes on Linux)
MAX_STRING = 4096
#: longest part of a value quoted in an error (a 10^6-character value is not echoed whole)
MAX_QUOTE = 200


def quote(value: Any, limit: int = MAX_QUOTE) -> str:
    """``repr(value)``, cut to about ``limit`` characters."""
    text = repr(value) if len(str(value)) < 4 * limit else repr(str(value)[: 2 * limit])
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value))} characters)"


def _bounds_text(meta: Mapping[str, Any]) -> str:
    parts = [
        f"{op} {meta[key]}"
        for key, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
        if key in meta
    ]
    return " and ".join(parts)


def _check_one(value: Any, meta: Mapping[str, Any], key: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: {value} is not a finite number")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        in_range = (
            value >= meta.get("ge", value)
            and ("gt" not in meta or value > meta["gt"])
            and value <= meta.get("le", value)
            and ("lt" not in meta or value < meta["lt"])
        )
        if not in_range:
            raise ConfigError(
                f"{key}: {quote(value)} is out of range (must be {_bounds_text(meta)})"
            )
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise ConfigError(
                f"{key}: {quote(value)} is too long (at most {MAX_STRING} characters)"
            )
        if meta.get("path") and any(
            len(part.encode("utf-8", "surrogatepass")) > 255 for part in Path(value).parts
        ):
            raise ConfigError(
                f"{key}: {quote(value)} has a file or folder name longer than 255 bytes"
            )
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{key}: {quote(value)} is not one of {', '.join(meta['choices'])}")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            raise ConfigError(
                f"{key}: {quote(value)} is not valid (expected {meta.get('pattern_doc', meta['pattern'])})"
            )


def check_field(value: Any, meta: Mapping[str, Any], key: str) -> None:
    """Check ``value`` (or each element of a list) against a field's constraints (see :func:`doc`)."""
    if value is None:
        return
    if isinstance(value, list):
        for i, element in enumerate(value):
            _check_one(element, meta, f"{key}[{i}]")
    else:
        _check_one(value, meta, key)


_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join("null" if a is type(None) else type_name(a) for a in typing.get_args(tp))
    if origin is list:
        (inner,) = typing.get_args(tp)
        return f"list[{type_name(inner)}]"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against type ``tp``; return it (ints widen to floats)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"{key}: {quote(value)} is not one of {type_name(tp)}")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{key}: null is not allowed (expected {type_name(tp)})")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(
            f"{key}: expected {type_name(tp)}, got {type(value).__name__} {quote(value)}"
        )
    if origin is list:
        (inner,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"{key}: expected a list ({type_name(tp)}), got {type(value).__name__} {quote(value)}"
            )
        return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        # PyYAML follows YAML 1.1, which reads `1e-7` (no dot) as a string.
        if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    else:  # pragma: no cover - a programming error in a config class
        raise TypeError(f"unsupported config type {tp!r} for {key}")
    raise ConfigError(f"{key}: expected {type_name(tp)}, got {type(value).__name__} {quote(value)}")


def from_dict(cls: type, values: Mapping[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, validating keys and types."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ConfigError(
            f"{prefix or 'config'}: expected a mapping of keys, got {type(values).__name__} {values!r}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in fields:
            where = f" in {prefix}" if prefix else ""
            raise ConfigError(
                f"unknown config key '{full}'; valid keys{where}: {', '.join(sorted(fields))}"
            )
        build = fields[key].metadata.get("build")
        if build is not None:
            kwargs[key] = build(value, full)
        else:
            kwargs[key] = _coerce(value, hints[key], full)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{prefix or 'config'}: {err}") from err
    # the one place every field's range is checked, from the constraints its doc() declares
    for f in dataclasses.fields(cls):
        if not _is_section(f, hints[f.name]):
            check_field(
                getattr(obj, f.name), f.metadata, f"{prefix}.{f.name}" if prefix else f.name
            )
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate(prefix)
    return obj


def _is_section(f: dataclasses.Field, tp: Any) -> bool:
    """A nested section (a dataclass, or a polymorphic one with a ``build``) rather than a plain value."""
    return dataclasses.is_dataclass(tp) or "build" in f.metadata


def to_dict(obj: Any) -> Any:
    """Plain-dict form of a config (for YAML dumps and checkpoints)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [to_dict(v) for v in obj]
    return obj


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"train.learning_rate=0.01"`` into (["train", "learning_rate"], 0.01).

    The value is parsed as YAML (``safe_load``), so ``[10, 20]``, ``null`` and
    ``true`` work; it is never evaluated as Python.
    """
    if "=" not in text:
        raise ConfigError(f"override {quote(text)} must look like section.key=value")
    path, raw = text.split("=", 1)
    keys = [k for k in path.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"override {quote(text)} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {quote(text)}: value is not valid YAML ({err})") from err
    return keys, value


def set_nested(tree: dict, keys: Sequence[str], value: Any, where: str | None = None) -> None:
    """Set ``tree[k1][k2]...[kn] = value``, creating sections; ``where`` prefixes errors."""
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            prefix = f"{where}: " if where else ""
            raise ConfigError(f"{prefix}cannot set '{'.'.join(keys)}': '{key}' is not a section")
        node = child
    node[keys[-1]] = value


def merge_tree(base: dict, update: Mapping) -> dict:
    """Recursively merge ``update`` into ``base`` (in place; mappings merge, other values replace)."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge_tree(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


# --------------------------------------------------------------------------- reference
def section_rows(cls: type, prefix: str) -> list[str]:
    """Markdown table rows (key, type, default, meaning) of ``cls``'s plain fields (sections are skipped)."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if _is_section(f, hints[f.name]):
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = "(required)"
        default_text = (
            yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip()
        )
        rows.append(
            f"| `{prefix}{f.name}` | `{type_name(hints[f.name])}` | `{default_text}` | {f.metadata.get('doc', '')} |"
        )
    return rows
