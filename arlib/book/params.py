"""``book/params.yml``, read and checked before any chapter runs.

The file maps ``default`` and each profile to chapters and their parameters::

    default:
      B5_smoothing: {eps_grid: [0, 4, 8, 16]}
    cpu:
      B5_smoothing: {ensure: false}

:func:`read_params_file` turns every way the file can be unreadable (not UTF-8, not
YAML, not a mapping) into one :class:`~arlib.errors.ConfigError` naming the file and,
for YAML, the line; :func:`check_params` checks the parsed mapping against the book's
chapters and, when given, each notebook's parameter defaults (same names, same kinds
of value), and returns the parameters of one profile.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError


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


def check_params(
    data: Any,
    profile: str,
    chapters: list[str],
    profiles: tuple[str, ...] | list[str] = ("smoke", "cpu", "paper"),
    defaults: dict[str, dict[str, Any]] | None = None,
    where: str = "book/params.yml",
) -> dict[str, dict]:
    """Per-chapter parameters of ``profile`` from parsed params ``data``: ``default`` entries, then the profile's.

    Every problem raises ConfigError with one line naming ``where`` and the entry:
    an unknown section or chapter, a section or chapter entry that is not a mapping,
    ``profile`` set (it comes from ``--profile``), and, with ``defaults``
    (chapter -> {parameter: the notebook's default}), a parameter the notebook does not
    define or a value of another kind than its default (a default of None takes anything;
    an int is a number).
    """
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
            for key, value in values.items():
                if key == "profile":
                    raise ConfigError(f"{where}: [{section}][{name}] sets 'profile'; use --profile instead")
                if defaults is not None and name in defaults:
                    if key not in defaults[name]:
                        raise ConfigError(f"{where}: [{section}][{name}] sets {key!r}, which the notebook does not define ({', '.join(sorted(defaults[name])) or 'no parameters'})")
                    want = _kind(defaults[name][key])
                    if defaults[name][key] is not None and want is not None and _kind(value) != want:
                        raise ConfigError(f"{where}: [{section}][{name}] {key} must be {want} like the notebook's default {defaults[name][key]!r}, got {value!r}")
            params[name].update(values)
    for name in chapters:
        params[name]["profile"] = profile
    return params


__all__ = ["read_params_file", "check_params"]
