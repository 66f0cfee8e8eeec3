"""Read YAML files so that every error can name the file, the line and the field.

``yaml.safe_load`` forgets where things were. We parse with PyYAML's safe loader, then walk the
composed node tree once more to record the line of every key and list item under its path
(``("jobs", "train", "gpu_types")``). Pydantic reports errors by the same kind of path (its
``loc``), so a validation error maps back to a line without any guessing. Duplicate keys, which
PyYAML silently lets the last one win, are reported as errors: in a policy file a silently
dropped rule is a security bug.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from placer.errors import ConfigError, ErrorDetail

Loc = tuple[str | int, ...]
API_VERSION = "placer/v1"
M = TypeVar("M", bound=BaseModel)


@dataclass
class SourceMap:
    """Lines (1-based) of every mapping key and sequence item in one YAML document."""

    file: str
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Sequence[str | int]) -> int | None:
        """Line of ``loc``, or of its longest prefix that was in the file."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)

    def detail(self, loc: Sequence[str | int], msg: str) -> ErrorDetail:
        return ErrorDetail(msg=msg, file=self.file, line=self.line(loc), field=format_loc(loc))

    def rekey(self, prefix: Loc, order: Sequence[str]) -> SourceMap:
        """Map paths ``prefix + (name, ...)`` to ``prefix + (index, ...)``.

        Loaders turn a YAML mapping keyed by name (``jobs: {train: …}``) into the list the model
        holds; this keeps the lines findable by the list index pydantic will report.
        """
        index = {name: i for i, name in enumerate(order)}
        out = dict(self.lines)
        n = len(prefix)
        for loc, line in self.lines.items():
            if loc[:n] == prefix and len(loc) > n and loc[n] in index:
                out[(*prefix, index[str(loc[n])], *loc[n + 1 :])] = line
        return SourceMap(self.file, out)


def format_loc(loc: Iterable[str | int]) -> str:
    """``("jobs", 0, "inputs", 1)`` → ``jobs[0].inputs[1]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _walk(node: yaml.Node, loc: Loc, sm: SourceMap, problems: list[ErrorDetail]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    ErrorDetail(
                        f"duplicate key {key!r} (first at line {seen[key]}); "
                        "YAML would silently keep only the last one",
                        sm.file,
                        line,
                        format_loc((*loc, key)),
                    )
                )
            seen[key] = line
            sm.lines[(*loc, key)] = line
            _walk(value_node, (*loc, key), sm, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sm.lines[(*loc, i)] = item.start_mark.line + 1
            _walk(item, (*loc, i), sm, problems)


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document safely; return the data and its source map.

    Raises:
        ConfigError: on a syntax error or a duplicate key, naming file and line.
    """
    sm = SourceMap(file)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigError(ErrorDetail(f"invalid YAML: {msg}", file, line)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(ErrorDetail(f"invalid YAML: {exc}", file)) from None
    if node is not None:
        sm.lines[()] = node.start_mark.line + 1
        problems: list[ErrorDetail] = []
        _walk(node, (), sm, problems)
        if problems:
            raise ConfigError(problems)
    return data, sm


def read_yaml(path: str | Path) -> tuple[Any, SourceMap]:
    """Read and parse a YAML file; a missing or unreadable file is a ConfigError too."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(ErrorDetail("file not found", str(p))) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(ErrorDetail(f"cannot read file: {exc}", str(p))) from None
    return parse_yaml(text, str(p))


def errors_from_validation(exc: ValidationError, sm: SourceMap, base: Loc = ()) -> ConfigError:
    """Turn a pydantic ValidationError into a ConfigError whose details carry lines.

    A validator may raise a :class:`ConfigError` whose details hold their own ``loc`` (for
    problems that span fields, such as a cycle); those are expanded in place so each still
    points at its line.
    """
    details: list[ErrorDetail] = []
    errors = exc.errors(include_url=False)
    for err in errors:
        loc = base + tuple(err["loc"])
        # pydantic also reports a list as too short when its only items failed: noise that
        # repeats the real errors below it.
        if err["type"] == "too_short" and any(
            len(o["loc"]) > len(err["loc"]) and tuple(o["loc"][: len(err["loc"])]) == err["loc"]
            for o in errors
        ):
            continue
        inner = (err.get("ctx") or {}).get("error")
        if isinstance(inner, ConfigError):
            for d in inner.details:
                sub = loc + d.loc
                details.append(ErrorDetail(d.msg, sm.file, sm.line(sub), format_loc(sub), sub))
            continue
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (check the spelling; see `placer schema`)"
        details.append(ErrorDetail(msg, sm.file, sm.line(loc), format_loc(loc), loc))
    return ConfigError(details)


def validate(
    model: type[M], data: Any, sm: SourceMap, context: Mapping[str, Any] | None = None
) -> M:
    """Validate ``data`` into ``model``; errors name the file, the line and the field."""
    try:
        return model.model_validate(data, context=dict(context) if context else None)
    except ValidationError as exc:
        raise errors_from_validation(exc, sm) from None


def strip_header(data: Any, sm: SourceMap, kind: str) -> dict[str, Any]:
    """Check ``apiVersion``/``kind`` (both optional) and return the body without them."""
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError(sm.detail((), f"expected a {kind} (a YAML mapping), got {got}"))
    body = dict(data)
    version = body.pop("apiVersion", API_VERSION)
    if version != API_VERSION:
        raise ConfigError(
            sm.detail(("apiVersion",), f"unsupported apiVersion {version!r}; use {API_VERSION}")
        )
    found = body.pop("kind", kind)
    if found != kind:
        raise ConfigError(sm.detail(("kind",), f"expected kind {kind}, got {found!r}"))
    return body
