"""Settings dataclasses: one strict coercer, declared ranges, and help from docstrings.

Every configurable component (a model's config, the training configuration)
is a dataclass. Values arrive as Python objects (from the library), JSON values
or strings (from ``--set key=value`` and config files); :func:`coerce` turns
them into the field's type, strictly: ``amp=ture`` is an error, not False, and
``blocks=2.5`` is not 2. A field may declare a range or a set of choices with
:func:`setting`; :func:`check` enforces them for every field of an instance, so
``blocks=-1`` and ``blocks=1e9`` are refused in one sentence before anything is
built. :func:`describe` lists the settings with their types, defaults, ranges
and the help text of the class docstring's ``Args:`` section, for
``pixelzoo settings``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing

from pixelzoo.errors import ConfigError

_MISSING = dataclasses.MISSING
SEED_LIMIT = 2**63  # torch generators take seeds below this


def setting(
    default=_MISSING,
    *,
    low=None,
    high=None,
    above=None,
    below=None,
    choices=None,
    default_factory=_MISSING,
):
    """A dataclass field with an allowed range or a tuple of ``choices``.

    ``low``/``high`` are inclusive bounds, ``above``/``below`` exclusive ones.
    ``None`` (for optional fields) is always allowed; bounds apply to numbers and to
    every element of a tuple.
    """
    meta = {
        "low": low,
        "high": high,
        "above": above,
        "below": below,
        "choices": tuple(choices) if choices else None,
    }
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _base(typ):
    """``(base type, optional)`` of an annotation such as ``int | None``."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        return (args[0] if len(args) == 1 else typ), type(None) in typing.get_args(typ)
    return typ, False


def type_name(typ) -> str:
    base, optional = _base(typ)
    origin = typing.get_origin(base)
    if origin is tuple:
        name = "tuple of " + type_name(typing.get_args(base)[0])
    elif origin is dict or base is dict:
        name = "dict"
    else:
        name = getattr(base, "__name__", str(base))
    return f"{name} or None" if optional else name


def parse_text(text: str):
    """A ``--set`` value: JSON where it parses (``3``, ``1e-3``, ``[0, 0.99]``, ``null``), else the string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def coerce(value, typ, key: str, owner: str):
    """``value`` as the type ``typ`` of setting ``key`` of ``owner``; one sentence if it is not one.

    Strings are read as JSON first (so ``"3"`` is 3 and ``"null"`` None); booleans
    accept only true/false (any case), 1/0 and yes/no; integers refuse fractions
    and booleans; floats refuse booleans and non-finite values; tuples take lists
    or comma-separated strings.
    """
    base, optional = _base(typ)

    def bad(reason: str = ""):
        return ConfigError(f"{owner}: {key}={value!r} is not a valid {type_name(typ)}{reason}")

    v = value
    if isinstance(v, str) and base is not str:
        if v.strip().lower() in ("none", "null"):
            v = None
        elif base is bool:
            v = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}.get(
                v.strip().lower(), v
            )
        elif typing.get_origin(base) is tuple and not v.strip().startswith("["):
            v = [parse_text(p) for p in v.strip("() ").split(",") if p.strip()]
        else:
            v = parse_text(v)
    if v is None:
        if optional:
            return None
        raise bad(" (it may not be None)")
    if base is bool:
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        raise bad(" (use true or false)")
    if base is int:
        if isinstance(v, bool):
            raise bad()
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
            return int(v)
        if isinstance(v, int):
            return v
        raise bad()
    if base is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad()
        if not math.isfinite(v):
            raise bad(" (it must be finite)")
        return float(v)
    if base is str:
        if isinstance(v, str):
            return v
        raise bad()
    if typing.get_origin(base) is tuple:
        if not isinstance(v, (list, tuple)):
            raise bad()
        (elem, *rest) = typing.get_args(base) or (object,)
        if rest and rest != [Ellipsis] and len(rest) + 1 != len(v):
            raise bad(f" (it needs {len(rest) + 1} values)")
        return tuple(coerce(e, elem, key, owner) for e in v)
    if base is dict or typing.get_origin(base) is dict:
        if isinstance(v, dict):
            return dict(v)
        raise bad()
    return v


def check(obj, owner: str) -> None:
    """Raise :class:`ConfigError` for the first field of dataclass ``obj`` outside its range.

    Floats must also be finite: a NaN or infinite setting is never meant.
    """
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            options = [repr(c) for c in choices] + (["None"] if f.default is None else [])
            allowed = " or ".join(options) if len(options) <= 2 else "one of " + ", ".join(options)
            raise ConfigError(f"{owner}: {f.name} must be {allowed}, got {value!r}")
        for v in value if isinstance(value, tuple) else (value,):
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{owner}: {f.name} must be a finite number, got {value!r}")
            if (
                isinstance(v, (int, float))
                and not isinstance(v, bool)
                and not _inside(v, f.metadata)
            ):
                raise ConfigError(f"{owner}: {f.name} must be {_range(f.metadata)}, got {value!r}")


def _inside(v, meta) -> bool:
    low, high, above, below = (meta.get(k) for k in ("low", "high", "above", "below"))
    return not (
        (low is not None and v < low)
        or (high is not None and v > high)
        or (above is not None and v <= above)
        or (below is not None and v >= below)
    )


def _range(meta) -> str:
    """The allowed range in words, e.g. ``in 1..1000``, ``> 0``, ``in [0, 1)``."""
    low, high, above, below = (meta.get(k) for k in ("low", "high", "above", "below"))
    if high is None and below is None and (above == 0 or (low == 1 and isinstance(low, int))):
        return "positive"
    lo = f"[{low}" if low is not None else (f"({above}" if above is not None else None)
    hi = f"{high}]" if high is not None else (f"{below})" if below is not None else None)
    if lo and hi:
        if low is not None and high is not None and all(isinstance(b, int) for b in (low, high)):
            return f"in {low}..{high}"
        return f"in {lo}, {hi}"
    if lo:
        return f">= {low}" if low is not None else f"> {above}"
    if hi:
        return f"<= {high}" if high is not None else f"< {below}"
    return "any value"


def build(cls, values: dict, owner: str):
    """An instance of dataclass ``cls`` from ``values`` (coerced), with its ranges checked."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"{owner} has no setting {unknown[0]!r}; valid settings: {', '.join(sorted(names))}"
        )
    obj = cls(**{k: coerce(v, hints[k], k, owner) for k, v in values.items()})
    check(obj, owner)
    return obj


def doc_args(cls) -> dict[str, str]:
    """The ``Args:`` section of a class docstring: ``{name: one-line help}``."""
    text = cls.__doc__ or ""
    match = re.search(r"^\s*Args:\s*$(.*)", text, flags=re.M | re.S)
    if not match:
        return {}
    out: dict[str, str] = {}
    current: list[str] = []
    indent = None
    for line in match.group(1).splitlines():
        if not line.strip():
            continue
        width = len(line) - len(line.lstrip())
        indent = width if indent is None else indent
        if width < indent:  # the section ended
            break
        head = re.match(r"\s*([\w, /]+):\s*(.*)", line)
        if width == indent and head:
            current = [n.strip() for n in re.split(r"[,/]", head.group(1)) if n.strip()]
            for name in current:
                out[name] = head.group(2).strip()
        else:
            for name in current:
                out[name] = (out[name] + " " + line.strip()).strip()
    return out


def describe(cls, overrides: dict | None = None) -> list[dict]:
    """One entry per field: name, type, default (or the preset's value), range and help."""
    hints = typing.get_type_hints(cls)
    helps: dict[str, str] = {}
    for klass in reversed(cls.__mro__):  # a subclass's Args add to its bases'
        if dataclasses.is_dataclass(klass):
            helps.update(doc_args(klass))
    rows = []
    for f in dataclasses.fields(cls):
        if f.default is not _MISSING:
            default = f.default
        elif f.default_factory is not _MISSING:
            default = f.default_factory()
        else:
            default = None
        if overrides and f.name in overrides:
            default = overrides[f.name]
        choices = f.metadata.get("choices")
        bounded = any(f.metadata.get(k) is not None for k in ("low", "high", "above", "below"))
        allowed = (
            ", ".join(map(str, choices)) if choices else (_range(f.metadata) if bounded else "")
        )
        rows.append(
            {
                "name": f.name,
                "type": type_name(hints[f.name]),
                "default": default,
                "allowed": allowed,
                "help": helps.get(f.name, ""),
            }
        )
    return rows
