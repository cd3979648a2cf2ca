"""The chapters' parameters, declared once, and ``book/params.yml``, read and checked before any chapter runs.

Every chapter notebook opens with the same papermill ``parameters`` cell; :data:`PARAMETERS`
declares it (name, type, default, meaning). :func:`parameters_cell` writes the cell's source
(``tests/test_chapters.py`` checks that every notebook holds exactly that), :func:`parameters_table`
the documentation (``arlib chapter --params``, the README), and :func:`check_values` checks a set
of values against it before a chapter runs: ``arlib chapter`` (strings from ``-p``),
:func:`arlib.book.chapter.setup` (whatever papermill or an edit put into the notebook) and
``arlib book`` (``book/params.yml``) all go through it, so a wrong type, an unknown name or a
bad list is one line naming the parameter, never a traceback from deep inside a chapter.

The params file maps ``default`` and each profile to chapters and their parameters::

    default:
      B5_smoothing: {eps_grid: [0, 4, 8, 16]}
    smoke:
      B5_smoothing: {ensure: true}

:func:`read_params_file` turns every way the file can be unreadable (not UTF-8, not
YAML, not a mapping) into one :class:`~arlib.errors.ConfigError` naming the file and,
for YAML, the line; :func:`check_params` checks the parsed mapping against the book's
chapters and the parameters (:data:`PARAMETERS`, or each notebook's defaults when given),
and returns the parameters of one profile.
"""

from __future__ import annotations

import ast

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class Parameter:
    """One parameter of the chapters' ``parameters`` cell."""

    name: str
    type: str  # as written in the cell: "str", "bool", "list[float] | None", "list[int] | None"
    default: Any
    meaning: str  # the cell's comment, the documentation's "meaning" column


#: The ``parameters`` cell of every chapter, in its order. The defaults render the committed
#: results: the book's profile, nothing trained (``ensure = False``).
PARAMETERS: tuple[Parameter, ...] = (
    Parameter("profile", "str", "cpu", "results store: smoke | cpu (both capacity regimes) | cpu-high | paper"),
    Parameter("dataset", "str", "cifar10", "one of the profile's datasets (cpu: cifar10)"),
    Parameter("eps_grid", "list[float] | None", None, "defensive strengths ε (0-255; 0: plain training), e.g. [0, 8, 16]; None: the profile's"),
    Parameter("spectral_grid", "list[float] | None", None, "spectral-norm targets of B.4.2, e.g. [1, 2]; None: the profile's"),
    Parameter("seeds", "list[int] | None", None, "training seeds, e.g. [0, 1]; None: the profile's"),
    Parameter("ensure", "bool", False, "True: train the missing runs first (slow); False: show the store, name what is missing"),
)
BY_NAME = {p.name: p for p in PARAMETERS}


def parameters_cell() -> str:
    """The source of every chapter's ``parameters`` cell: one assignment per parameter, its type and meaning as the comment
    (papermill's ``--help-notebook`` shows the comment)."""
    lines = [f"{p.name} = {_literal(p.default)}" for p in PARAMETERS]
    width = max(map(len, lines)) + 2
    return "\n".join(f"{line:<{width}}# {p.type}: {p.meaning}" for line, p in zip(lines, PARAMETERS))


def _literal(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def parameters_table(markdown: bool = False) -> str:
    """The parameters documented: name, type, default and meaning, as a Markdown table or aligned text."""
    rows = [(p.name, p.type, _literal(p.default), p.meaning) for p in PARAMETERS]
    head = ("name", "type", "default", "meaning")
    if markdown:
        cell = lambda i, c: (f"`{c}`" if i < 3 else c).replace("|", "\\|")  # noqa: E731
        return "\n".join(
            ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(cell(i, c) for i, c in enumerate(r)) + " |" for r in rows]
        )
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in (head, *rows))


# -- values --------------------------------------------------------------------------------

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
_EXPECTED = {
    "str": "a string",
    "bool": "true or false",
    "list[float] | None": "a list of numbers such as [0, 8, 16] (or 0,8,16), or None",
    "list[int] | None": "a list of whole numbers such as [0, 1] (or 0,1), or None",
}


def _number(x: Any, whole: bool) -> float | int | None:
    if isinstance(x, str):
        try:
            x = float(x.strip())
        except ValueError:
            return None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    if whole:
        return int(x) if float(x).is_integer() else None
    return float(x)


def _items(value: Any, lenient: bool) -> list | None:
    """A list value's items: a list or tuple; leniently also "0,8,16", "[0, 8, 16]" or a lone number."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if not lenient:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = json.loads(text)
            except ValueError:
                return None  # "[0,8,x]": not a list of numbers
            return parsed if isinstance(parsed, list) else None
        return [t for t in (s.strip() for s in text.split(",")) if t] or None
    return None


def parse_value(name: str, value: Any, lenient: bool = True) -> Any:
    """``value`` of parameter ``name`` in its declared type, or :class:`ConfigError` with one line.

    ``lenient`` (values typed on a command line or injected by papermill, which passes most values
    as strings): ``"false"``/``"no"``/``"0"`` for a bool, ``"0,8,16"``, ``"[0, 8, 16]"`` or a lone
    number for a list, ``"none"`` for None. Otherwise (YAML) the value must already have its type.
    """
    p = BY_NAME[name]
    fail = ConfigError(f"{name} must be {_EXPECTED[p.type]}, got {value!r}")
    if p.type == "str":
        if not isinstance(value, str) or not value.strip():
            raise fail
        return value.strip()
    if p.type == "bool":
        if isinstance(value, bool):
            return value
        if lenient and isinstance(value, (str, int)) and str(value).strip().lower() in _TRUE | _FALSE:
            return str(value).strip().lower() in _TRUE
        raise fail
    if value is None or (lenient and isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
        return None
    items = _items(value, lenient)
    whole = p.type.startswith("list[int]")
    numbers = [_number(x, whole) if lenient or not isinstance(x, str) else None for x in items or []]
    if not items or any(n is None for n in numbers):
        raise fail
    return numbers


def check_values(values: Mapping[str, Any], lenient: bool = True, known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every parameter of a chapter, checked: :data:`PARAMETERS`' defaults updated with ``values``, each in its type and range.

    ``known``: the names the notebook defines (default: :data:`PARAMETERS`). Raises :class:`ConfigError`
    with one line for an unknown name, a value of the wrong type (:func:`parse_value`), an unknown profile,
    a dataset the profile does not run, ε outside [0, 255], a negative seed or a spectral target <= 0.
    """
    from .. import profiles

    names = list(known) if known is not None else list(BY_NAME)
    unknown = [k for k in values if k not in names]
    if unknown:
        raise ConfigError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; the chapter's parameters are {', '.join(names)}"
        )
    out = {p.name: p.default for p in PARAMETERS if p.name in names}
    out.update({k: parse_value(k, v, lenient) if k in BY_NAME else v for k, v in values.items()})
    prof = profiles.get(out["profile"]) if "profile" in out else None  # unknown profile: one line naming the choices
    if prof is not None and out.get("dataset") not in (None, *prof.datasets):
        raise ConfigError(f"dataset {out['dataset']!r} is not in profile {prof.name} (it runs {', '.join(prof.datasets)})")
    for name, ok, rule in (
        ("eps_grid", lambda e: 0 <= e <= 255, "between 0 and 255"),
        ("seeds", lambda s: s >= 0, "0 or more"),
        ("spectral_grid", lambda s: s > 0, "above 0"),
    ):
        bad = [x for x in out.get(name) or () if not ok(x)]
        if bad:
            raise ConfigError(f"{name} values must be {rule}, got {', '.join(f'{x:g}' for x in bad)}")
    return out


# -- book/params.yml -------------------------------------------------------------------------


def read_params_file(path: str | os.PathLike) -> dict:
    """The parsed mapping of a params file ({} if it does not exist or is empty)."""
    import yaml  # the book extra; only the book reads this file

    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise ConfigError(f"{path}: is a directory, not a YAML file")
        return {}
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML ({where}{getattr(e, 'problem', None) or type(e).__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of sections (default, a profile), not a {type(data).__name__}")
    return data


_KINDS = ((bool, "true or false"), ((int, float), "a number"), (str, "a string"), ((list, tuple), "a list"), (dict, "a mapping"))


def _kind(value: Any) -> str | None:
    for types, word in _KINDS:
        if isinstance(value, types):
            return word
    return None


def notebook_parameters(nb) -> dict[str, Any]:
    """The names and default values of a notebook's ``parameters`` cell (literal assignments, read with ``ast``)."""
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        return {}
    out: dict[str, Any] = {}
    for node in ast.parse(cells[0].source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else getattr(node, "target", None)
        if isinstance(target, ast.Name) and getattr(node, "value", None) is not None:
            try:
                out[target.id] = ast.literal_eval(node.value)
            except ValueError:
                out[target.id] = None
    return out


def check_params(
    data: Any,
    profile: str,
    chapters: list[str],
    profiles: tuple[str, ...] | list[str] | None = None,
    defaults: dict[str, dict[str, Any]] | None = None,
    where: str = "book/params.yml",
) -> dict[str, dict]:
    """Per-chapter parameters of ``profile`` from parsed params ``data``: ``default`` entries, then the profile's.

    ``profiles``: the sections a params file may have besides ``default`` (default: every profile of
    :data:`arlib.profiles.PROFILES`). Every problem raises ConfigError with one line naming ``where`` and the entry:
    an unknown section or chapter, a section or chapter entry that is not a mapping,
    ``profile`` set (it comes from ``--profile``), a parameter the chapter does not define
    (``defaults``: chapter -> {parameter: the notebook's default}; else :data:`PARAMETERS`), a
    value of another type than declared (:func:`parse_value`, strictly: YAML values have types;
    a parameter that only ``defaults`` knows must be of its default's kind, None taking anything),
    and a value out of range for the profile (:func:`check_values`). So ``arlib book`` stops
    before executing any chapter.
    """
    if profiles is None:
        from ..profiles import PROFILES

        profiles = tuple(PROFILES)
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a mapping of sections, not a {type(data).__name__}")
    unknown = sorted(map(str, set(data) - {"default", *profiles}))
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {unknown}; expected default, {', '.join(profiles)}")
    params: dict[str, dict] = {name: {} for name in chapters}
    for section in ("default", profile):
        entries = data.get(section) or {}
        if not isinstance(entries, dict):
            raise ConfigError(f"{where}: [{section}] must be a mapping of chapters, not a {type(entries).__name__}")
        for name, values in entries.items():
            if name not in params:
                raise ConfigError(f"{where}: [{section}] names chapter {name!r}, which is not in _toc.yml ({', '.join(chapters)})")
            values = values or {}
            if not isinstance(values, dict):
                raise ConfigError(f"{where}: [{section}][{name}] must be a mapping of parameters, not a {type(values).__name__}")
            known = defaults[name] if defaults is not None and name in defaults else {p.name: p.default for p in PARAMETERS}
            for key, value in values.items():
                if key == "profile":
                    raise ConfigError(f"{where}: [{section}][{name}] sets 'profile'; use --profile instead")
                if key not in known:
                    raise ConfigError(
                        f"{where}: [{section}][{name}] sets {key!r}, which the notebook does not define ({', '.join(sorted(known)) or 'no parameters'})"
                    )
                try:
                    if key in BY_NAME:
                        parse_value(key, value, lenient=False)
                    elif known[key] is not None and _kind(known[key]) is not None and _kind(value) != _kind(known[key]):
                        raise ConfigError(f"{key} must be {_kind(known[key])} like the notebook's default {known[key]!r}, got {value!r}")
                except ConfigError as e:
                    raise ConfigError(f"{where}: [{section}][{name}] {e}") from None
            params[name].update(values)
    for name in chapters:
        params[name]["profile"] = profile
        try:
            check_values({k: v for k, v in params[name].items() if k in BY_NAME}, lenient=False)
        except ConfigError as e:
            raise ConfigError(f"{where}: [{profile}][{name}] {e}") from None
    return params


__all__ = [
    "Parameter",
    "PARAMETERS",
    "notebook_parameters",
    "parameters_cell",
    "parameters_table",
    "parse_value",
    "check_values",
    "read_params_file",
    "check_params",
]
