"""Read YAML files so that every error can name the file, the line and the field.

``yaml.safe_load`` forgets where things were. We read the parser's events once (libyaml's C
parser when PyYAML has it) and, as the nodes are composed, record the line of every key and
list item under its path (``("jobs", "train", "gpu_types")``). Pydantic reports errors by the
same kind of path (its ``loc``), so a validation error maps back to a line without any
guessing. Duplicate keys, which PyYAML silently lets the last one win, are reported as errors:
in a policy file a silently dropped rule is a security bug.

Files are input from anyone, so the parse is bounded before anything is expanded: nesting
deeper than :data:`MAX_DEPTH` and aliases that would expand past :func:`expansion_limit` (a
"billion laughs") are refused with the line, and nothing recurses, so no file can exhaust
memory, time or the stack. The data is ``yaml.safe_load``'s, built from the same nodes.
"""

from __future__ import annotations

import difflib
import gc
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from placer.errors import ConfigError, ErrorDetail

Loc = tuple[str | int, ...]
API_VERSION = "placer/v1"
M = TypeVar("M", bound=BaseModel)


class SourceMap:
    """Lines (1-based) of every mapping key and sequence item in one YAML document.

    :meth:`rekey` is applied lazily: on a 100,000-job file, copying two million paths into
    their index form took seconds, while reporting an error needs a few lookups. Reading
    ``lines`` applies it, so the dict holds what it always held.
    """

    __slots__ = ("_lines", "_renames", "file")

    def __init__(self, file: str, lines: dict[Loc, int] | None = None) -> None:
        self.file = file
        self._lines: dict[Loc, int] = {} if lines is None else lines
        # pending rekey()s, oldest first: (prefix, name -> index, index -> name)
        self._renames: list[tuple[Loc, dict[Any, int], dict[int, Any]]] = []

    @property
    def lines(self) -> dict[Loc, int]:
        """Every path recorded → its line, including the index paths of :meth:`rekey`."""
        for prefix, index, _ in self._renames:
            out = dict(self._lines)
            n = len(prefix)
            for loc, line in self._lines.items():
                if loc[:n] == prefix and len(loc) > n and loc[n] in index:
                    out[(*prefix, index[loc[n]], *loc[n + 1 :])] = line
            self._lines = out
        self._renames = []
        return self._lines

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SourceMap):
            return NotImplemented
        return (self.file, self.lines) == (other.file, other.lines)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SourceMap(file={self.file!r}, lines={self.lines!r})"

    def _get(self, loc: Loc, stage: int) -> int | None:
        """``lines.get(loc)`` as it would be after the first ``stage`` pending rekeys."""
        for k in range(stage - 1, -1, -1):
            prefix, _, names = self._renames[k]
            n = len(prefix)
            if len(loc) > n and loc[:n] == prefix:
                i = loc[n]
                if isinstance(i, int) and i in names:
                    found = self._get((*prefix, names[i], *loc[n + 1 :]), k)
                    if found is not None:
                        return found
        return self._lines.get(loc)

    def line(self, loc: Sequence[str | int]) -> int | None:
        """Line of ``loc``, or of its longest prefix that was in the file."""
        loc = tuple(loc)
        stage = len(self._renames)
        while loc:
            found = self._get(loc, stage)
            if found is not None:
                return found
            loc = loc[:-1]
        return self._lines.get((), None)

    def detail(self, loc: Sequence[str | int], msg: str) -> ErrorDetail:
        return ErrorDetail(msg=msg, file=self.file, line=self.line(loc), field=format_loc(loc))

    def rekey(self, prefix: Loc, order: Sequence[str]) -> SourceMap:
        """Map paths ``prefix + (name, ...)`` to ``prefix + (index, ...)``.

        Loaders turn a YAML mapping keyed by name (``jobs: {train: …}``) into the list the model
        holds; this keeps the lines findable by the list index pydantic will report.
        """
        index = {name: i for i, name in enumerate(order)}
        out = SourceMap(self.file, dict(self._lines))
        out._renames = [*self._renames, (prefix, index, {i: name for name, i in index.items()})]
        return out


def format_loc(loc: Iterable[str | int]) -> str:
    """``("jobs", 0, "inputs", 1)`` → ``jobs[0].inputs[1]``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- parsing: one pass over the parser's events, bounded before anything is expanded ----------

MAX_DEPTH = 64
"""Deepest nesting of mappings and sequences accepted, counted through aliases. placer's files
need fewer than ten; the bound keeps every recursive consumer (the constructor, pydantic, the
source map) far from Python's recursion limit, and a 100,000-deep file is refused at its 65th
level instead of crashing the process."""

MIN_EXPANSION_LIMIT = 1_000_000
EXPANSION_FACTOR = 10
"""A document may stand for at most ``max(MIN_EXPANSION_LIMIT, EXPANSION_FACTOR x its own
nodes)`` nodes once every alias is expanded (see :func:`expansion_limit`)."""

_LOADER: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader
_STR = "tag:yaml.org,2002:str"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"
# Implicit scalars built while composing (their constructors cannot fail on a resolved value);
# explicit tags, timestamps and the rest keep a node and are built by PyYAML's constructor.
_EAGER_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float"))
_NODE: Any = object()  # "this scalar needs a node" (in the resolved-value cache)
_NOKEY: Any = object()  # "no mapping key is waiting for its value" (None is a valid key)


def expansion_limit(own_nodes: int) -> int:
    """Most nodes a document of ``own_nodes`` nodes may stand for with its aliases expanded.

    ``<<: *defaults`` in each of 100,000 jobs adds about 20 nodes per job to the ~30 each job
    writes, far inside the bound; a "billion laughs" (nine aliases of nine aliases of …)
    multiplies its few dozen nodes by 9 per level and is refused after its few hundred bytes
    are read, before anything is expanded. The floor keeps small files free to use aliases.
    """
    return max(MIN_EXPANSION_LIMIT, EXPANSION_FACTOR * own_nodes)


@dataclass
class _Composed:
    """A composed document: nodes, except that plain scalars outside anchors are their value."""

    root: Any = None  # a node; None for an empty stream
    problems: list[ErrorDetail] = field(default_factory=list)  # duplicate keys
    # (path, node, len(problems) then) for every alias the source map must expand
    alias_uses: list[tuple[Loc, yaml.Node, int]] = field(default_factory=list)
    merging: set[yaml.Node] = field(default_factory=set)  # mappings with a << or = key


def _resolve_plain(loader: Any, value: str, implicit: tuple[bool, bool]) -> tuple[str, Any]:
    """Tag of a plain scalar, and its value when it can be built now (else ``_NODE``)."""
    tag: str = loader.resolve(ScalarNode, value, implicit)
    if tag == _STR:
        return tag, value
    if tag in _EAGER_TAGS:
        try:
            return tag, loader.yaml_constructors[tag](loader, ScalarNode(tag, value))
        except Exception:  # left to the constructor, which names the line
            pass
    return tag, _NODE


def _duplicate(key: str, first: int, sm: SourceMap, line: int, loc: Loc) -> ErrorDetail:
    return ErrorDetail(
        f"duplicate key {key!r} (first at line {first}); "
        "YAML would silently keep only the last one",
        sm.file,
        line,
        format_loc(loc),
    )


def _compose(loader: Any, sm: SourceMap) -> _Composed:
    """Compose the single document of ``loader``'s event stream, without recursion.

    Records the line of every key and item reached without going through an alias (those
    below an alias are added later, once the expansion is known to be bounded) and reports
    duplicate keys. Refuses nesting deeper than :data:`MAX_DEPTH`, recursive aliases and
    expansion past :func:`expansion_limit` as soon as they are seen. Tags, anchors and errors
    are those of PyYAML's ``Composer``; a plain string, number, bool or null outside any
    anchored or specially tagged collection is kept as its value (a node with two marks for
    each of millions of scalars was most of the time and memory of a big file).

    The state of the innermost open collection lives in local variables (this loop runs once
    per event of the file); the enclosing ones are saved on ``stack``.
    """
    from yaml.composer import ComposerError

    get_event = loader.get_event
    lines = sm.lines
    implicit_resolvers = loader.yaml_implicit_resolvers
    wildcard = bool(implicit_resolvers.get(None))
    resolved: dict[str, tuple[str, Any]] = {}
    anchors: dict[str, yaml.Node] = {}
    closed: dict[str, tuple[int, int]] = {}  # anchor -> (expanded size, height) once complete
    out = _Composed()
    problems, alias_uses, merging = out.problems, out.alias_uses, out.merging
    scalar_t, alias_t = yaml.ScalarEvent, yaml.AliasEvent
    map_start_t, seq_start_t = yaml.MappingStartEvent, yaml.SequenceStartEvent
    map_end_t, seq_end_t = yaml.MappingEndEvent, yaml.SequenceEndEvent

    # The innermost open collection: its node and items; its path (None inside a mapping key,
    # which the source map does not enter); for a mapping, the key waiting for its value, that
    # key's path and the keys seen so far; whether its scalars may be kept as values (not
    # after a << key, whose value PyYAML's errors need as a node).
    cur: Any = None
    items: list[Any] = []
    loc: Loc | None = ()
    is_map = False
    key: Any = _NOKEY
    keypath: Loc | None = None
    seen: set[str] = set()
    plain = True  # not inside an anchored or specially tagged collection
    values_ok = False  # plain, and not the root, and not right after a << key
    anchored: tuple[str, int, int, int] | None = None  # (anchor, own, extra, deepest) at start
    stack: list[tuple[Any, ...]] = []
    depth = 0  # open collections
    deepest = 0  # deepest level reached since the innermost open anchored collection began
    own = 0  # nodes written in the file
    extra = 0  # nodes added by expanding aliases
    biggest = (0, 0, "")  # (expanded size, line, anchor) of the largest alias use

    def duplicate_anchor(anchor: str, event: Any) -> ComposerError:
        return ComposerError(
            f"found duplicate anchor {anchor!r}; first occurrence", anchors[anchor].start_mark,
            "second occurrence", event.start_mark,
        )

    get_event()  # stream start
    if isinstance(get_event(), yaml.StreamEndEvent):
        return out
    while True:
        event = get_event()
        t = type(event)
        if t is scalar_t:
            tag, value = event.tag, event.value
            if tag is None or tag == "!":
                if not event.implicit[0] or (
                    not wildcard and value[:1] not in implicit_resolvers
                ):
                    tag, obj = _STR, value  # quoted, or no implicit type starts with this
                else:
                    hit = resolved.get(value)
                    if hit is None:
                        hit = resolved[value] = _resolve_plain(loader, value, event.implicit)
                    tag, obj = hit
            else:
                obj = value if tag == _STR else _NODE
            own += 1
            anchor = event.anchor
            node: Any
            if (
                obj is _NODE or not values_ok or anchor is not None
                or (key is _NOKEY and is_map and tag != _STR)
            ):
                node = ScalarNode(tag, value, event.start_mark, event.end_mark, event.style)
                if anchor is not None:
                    if anchor in anchors:
                        raise duplicate_anchor(anchor, event)
                    anchors[anchor] = node
                    closed[anchor] = (1, 0)
            else:
                node = obj
            if is_map:
                if key is _NOKEY:
                    key = node
                    if loc is None:
                        keypath = None
                    else:
                        keypath = (*loc, value)
                        line = event.start_mark.line + 1
                        if value in seen:
                            problems.append(_duplicate(value, lines[keypath], sm, line, keypath))
                        seen.add(value)
                        lines[keypath] = line
                        if tag == _MERGE:
                            merging.add(cur)
                            values_ok = False
                        elif tag == _VALUE:
                            merging.add(cur)
                else:
                    items.append((key, node))
                    key = _NOKEY
                    values_ok = plain
                continue
            if cur is not None:
                if loc is not None:
                    lines[(*loc, len(items))] = event.start_mark.line + 1
                items.append(node)
                continue
        elif t is map_start_t or t is seq_start_t:
            anchor = event.anchor
            if anchor is not None and anchor in anchors:
                raise duplicate_anchor(anchor, event)
            if depth >= MAX_DEPTH:
                raise ConfigError(_too_deep(sm.file, event.start_mark.line + 1))
            tag = event.tag
            if tag is None or tag == "!":
                tag = _MAP if t is map_start_t else _SEQ
            node_type = MappingNode if t is map_start_t else SequenceNode
            node = node_type(tag, [], event.start_mark, None, flow_style=event.flow_style)
            own += 1
            if is_map:
                child_loc = keypath if key is not _NOKEY else None
            elif cur is None:
                child_loc = ()
            else:
                child_loc = None if loc is None else (*loc, len(items))
            stack.append((cur, items, loc, is_map, key, keypath, seen, plain, anchored))
            depth += 1
            plain = plain and anchor is None and tag in (_MAP, _SEQ)
            if anchor is not None:
                anchors[anchor] = node
                anchored = (anchor, own - 1, extra, deepest)
                deepest = depth
            elif depth > deepest:
                deepest = depth
            cur, items, loc, is_map = node, node.value, child_loc, t is map_start_t
            key, keypath, values_ok = _NOKEY, None, plain
            if is_map:
                seen = set()
            continue
        elif t is map_end_t or t is seq_end_t:
            node = cur
            node.end_mark = event.end_mark
            if anchored is not None and anchors[anchored[0]] is node:
                anchor, own0, extra0, deepest0 = anchored
                closed[anchor] = (own - own0 + extra - extra0, deepest - depth + 1)
                deepest = max(deepest, deepest0)
            cur, items, loc, is_map, key, keypath, seen, plain, anchored = stack.pop()
            values_ok = plain and cur is not None
            depth -= 1
        elif t is alias_t:
            anchor = event.anchor
            node = anchors.get(anchor)
            line = event.start_mark.line + 1
            if node is None:
                raise ComposerError(
                    None, None, f"found undefined alias {anchor!r}", event.start_mark
                )
            if anchor not in closed:
                raise ConfigError(ErrorDetail(
                    f"alias *{anchor} is inside the node it names (a recursive structure); "
                    "placer files cannot use one", sm.file, line,
                ))
            size, height = closed[anchor]
            if depth + height > MAX_DEPTH:
                raise ConfigError(ErrorDetail(
                    f"alias *{anchor} nests the document deeper than {MAX_DEPTH} levels; "
                    "refused", sm.file, line,
                ))
            own += 1
            extra += size - 1
            deepest = max(deepest, depth + height)
            if size > biggest[0]:
                biggest = (size, line, anchor)
        else:  # document end
            break

        # A collection or an alias is complete (or the document is one scalar): hang it on
        # the collection around it.
        if cur is None:
            out.root = node
            lines[()] = node.start_mark.line + 1
        elif is_map:
            if key is _NOKEY:
                key = node
                keypath = None
                if loc is not None and type(node) is ScalarNode:  # an alias to a scalar
                    keypath = (*loc, node.value)
                    line = node.start_mark.line + 1
                    if node.value in seen:
                        problems.append(_duplicate(node.value, lines[keypath], sm, line, keypath))
                    seen.add(node.value)
                    lines[keypath] = line
                    if node.tag in (_MERGE, _VALUE):
                        merging.add(cur)
                        values_ok = plain and node.tag != _MERGE
            else:
                items.append((key, node))
                if t is alias_t and keypath is not None:
                    alias_uses.append((keypath, node, len(problems)))
                key = _NOKEY
                values_ok = plain
        else:
            if loc is not None:
                path = (*loc, len(items))
                lines[path] = node.start_mark.line + 1
                if t is alias_t:
                    alias_uses.append((path, node, len(problems)))
            items.append(node)

    event = get_event()
    if not isinstance(event, yaml.StreamEndEvent):
        raise ComposerError(
            "expected a single document in the stream", out.root.start_mark,
            "but found another document", event.start_mark,
        )
    limit = expansion_limit(own)
    if own + extra > limit:
        size, line, anchor = biggest
        raise ConfigError(ErrorDetail(
            f"aliases expand this document to {own + extra:,} nodes, over the limit of "
            f"{limit:,} (the larger of {MIN_EXPANSION_LIMIT:,} and {EXPANSION_FACTOR} x the "
            f"{own:,} written in it); alias *{anchor} here stands for {size:,} by itself. "
            "Refused as a likely 'billion laughs' attack",
            sm.file, line,
        ))
    return out


def _walk(node: yaml.Node) -> tuple[list[tuple[Loc, int]], list[tuple[str, int, int, Loc]]]:
    """Paths (relative to ``node``, an anchored node: all nodes) of every key and item below
    it, through aliases, with their lines; and its duplicate keys as ``(key, first line, line,
    path)``, in document order. Iterative, like everything that walks a document."""
    lines: list[tuple[Loc, int]] = []
    problems: list[tuple[str, int, int, Loc]] = []
    stack: list[list[Any]] = [[node, (), 0, {}]]
    while stack:
        frame = stack[-1]
        node, loc, i, seen = frame
        if not isinstance(node, MappingNode | SequenceNode) or i >= len(node.value):
            stack.pop()
            continue
        frame[2] = i + 1
        if isinstance(node, MappingNode):
            key_node, child = node.value[i]
            if not isinstance(key_node, ScalarNode):
                continue  # an unhashable key: construction reports it
            key = key_node.value
            line = key_node.start_mark.line + 1
            child_loc: Loc = (*loc, key)
            if key in seen:
                problems.append((key, seen[key], line, child_loc))
            seen[key] = line
        else:
            child = node.value[i]
            child_loc = (*loc, i)
            line = child.start_mark.line + 1
        lines.append((child_loc, line))
        if isinstance(child, MappingNode | SequenceNode):
            stack.append([child, child_loc, 0, {}])
    return lines, problems


def _construct(loader: Any, root: yaml.Node, merging: set[yaml.Node]) -> Any:
    """Build Python data from the composed document as ``yaml.safe_load`` would.

    Plain mappings and sequences are built here (PyYAML's generic constructor costs several
    times more per node); merge keys follow ``SafeConstructor.flatten_mapping`` without
    changing the nodes; any other tag goes to the loader's own safe constructor, so unknown
    tags are refused exactly as before. A node reached through several aliases becomes one
    shared object, as in PyYAML. Recursion is bounded by :data:`MAX_DEPTH`.
    """
    from yaml.constructor import ConstructorError

    memo: dict[yaml.Node, Any] = loader.constructed_objects

    def construct_object(node: yaml.Node) -> Any:
        """PyYAML's safe constructor, whose crashes on values such as ``!!int x`` or
        ``2020-13-45`` become errors with a line."""
        try:
            return loader.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except Exception as exc:
            text = node.value if isinstance(node, ScalarNode) else f"this {node.tag}"
            text = text if len(text) <= 40 else text[:37] + "..."
            raise ConstructorError(
                None, None, f"cannot read {text!r} as {node.tag.rsplit(':', 1)[-1]}: {exc}",
                node.start_mark,
            ) from None

    flat: dict[yaml.Node, list[tuple[Any, Any]]] = {}

    def pairs(node: MappingNode) -> list[tuple[Any, Any]]:
        """``node.value`` with merge keys applied (``SafeConstructor.flatten_mapping``)."""
        if node not in merging:
            return node.value  # type: ignore[no-any-return]
        if node in flat:
            return flat[node]
        merge: list[tuple[Any, Any]] = []
        own: list[tuple[Any, Any]] = []
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode or key_node.tag != _MERGE:
                own.append((key_node, value_node))
            elif isinstance(value_node, MappingNode):
                merge.extend(pairs(value_node))
            elif isinstance(value_node, SequenceNode):
                sub = []
                for subnode in value_node.value:
                    if not isinstance(subnode, MappingNode):
                        # a plain scalar is kept as its value here: it has no mark of its own
                        raise ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            "expected a mapping for merging, but found "
                            f"{getattr(subnode, 'id', 'scalar')}",
                            getattr(subnode, "start_mark", value_node.start_mark),
                        )
                    sub.append(pairs(subnode))
                for p in reversed(sub):
                    merge.extend(p)
            else:
                raise ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "expected a mapping or list of mappings for merging, but found "
                    f"{value_node.id}", value_node.start_mark,
                )
        flat[node] = merge + own
        return flat[node]

    def build(node: Any) -> Any:
        cls = type(node)
        if cls is ScalarNode:
            if node.tag == _STR:
                return node.value
            return construct_object(node)
        if cls is not MappingNode and cls is not SequenceNode:
            return node  # a plain scalar, already its value
        if node in memo:
            return memo[node]
        if cls is MappingNode and node.tag == _MAP:
            data: dict[Any, Any] = {}
            for key_node, value_node in pairs(node):
                if type(key_node) is str:
                    key = key_node
                elif type(key_node) is ScalarNode and key_node.tag == _VALUE:
                    key = key_node.value  # flatten_mapping makes "=" a plain string key
                else:
                    key = build(key_node)
                    if not isinstance(key, Hashable):
                        raise ConstructorError(
                            "while constructing a mapping", node.start_mark,
                            "found unhashable key", key_node.start_mark,
                        )
                data[key] = build(value_node)
            memo[node] = data
            return data
        if cls is SequenceNode and node.tag == _SEQ:
            items = [build(item) for item in node.value]
            memo[node] = items
            return items
        return construct_object(node)

    return build(root)


_REREAD_LIMIT = 64 * 1024
_REREAD_MAX_BRACKETS = 4096
"""PyYAML's pure-Python scanner is quadratic in flow nesting: text with more brackets than
this is never re-read (the error keeps libyaml's wording)."""


def _too_deep(file: str, line: int | None) -> ErrorDetail:
    return ErrorDetail(f"mappings and lists are nested deeper than {MAX_DEPTH} levels; refused "
                       "(a placer file needs fewer than ten)", file, line)


def _is_libyaml_depth_error(exc: yaml.MarkedYAMLError) -> bool:
    """libyaml (PyYAML 6.0.4's wheels) refuses deep flow nesting itself, before our composer
    sees the events; it is the same refusal, said our way."""
    return "maximum nesting depth" in (exc.problem or "")


def _pyyaml_wording(text: str, exc: yaml.MarkedYAMLError) -> yaml.MarkedYAMLError:
    """The same syntax error as PyYAML's own parser words it, when it finds it on that line.

    libyaml says "did not find expected ',' or ']'" where PyYAML says what it found instead
    ("but got '<stream end>'"); messages users and tests know are PyYAML's. Only on error, and
    only when the text up to the error is small: re-reading it in pure Python costs seconds
    per megabyte.
    """
    from yaml.parser import ParserError
    from yaml.scanner import ScannerError

    mark = exc.problem_mark
    if _LOADER is yaml.SafeLoader or not isinstance(exc, ScannerError | ParserError) or not mark:
        return exc
    if _is_libyaml_depth_error(exc):
        return exc
    end = 0
    for _ in range(mark.line + 1):
        end = text.find("\n", end) + 1
        if end == 0 or end > _REREAD_LIMIT:
            break
    head = text[:end] if end else text
    if end > _REREAD_LIMIT or head.count("[") + head.count("{") > _REREAD_MAX_BRACKETS:
        return exc
    try:
        loader: Any = yaml.SafeLoader(head)
        while not isinstance(loader.get_event(), yaml.StreamEndEvent | None):
            pass
    except yaml.MarkedYAMLError as mine:
        if mine.problem_mark is not None and mine.problem_mark.line == mark.line:
            return mine
    except yaml.YAMLError:
        pass
    return exc


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a big file's objects are made.

    Parsing or validating 100,000 jobs allocates millions of objects and no cycles; the
    collector, triggered again and again by the allocations, traversed them all each time and
    took a third of the time. Collection resumes, as it was, when the block ends. (Moving the
    new objects to the oldest generation with ``gc.freeze`` would save 2 s more per 100,000
    jobs, but it moves every object of the process: a library must not do that to its host.)
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document safely; return the data and its source map.

    One pass of libyaml's parser (PyYAML's own when libyaml is missing) feeds a composer that
    refuses hostile input before anything is expanded (see :data:`MAX_DEPTH` and
    :func:`expansion_limit`); the data is then built from the same nodes with
    ``yaml.safe_load``'s semantics. No recursion anywhere, and the garbage collector is
    paused meanwhile (see :func:`_gc_paused`).

    Raises:
        ConfigError: on a syntax error, a duplicate key, or input refused as hostile (nested
            too deep, aliases that expand too far, recursive aliases), naming file and line.
    """
    sm = SourceMap(file)
    with _gc_paused():
        return _parse(text, file, sm)


def _parse(text: str, file: str, sm: SourceMap) -> tuple[Any, SourceMap]:
    """:func:`parse_yaml`'s work: compose, fill in the source map below aliases, construct."""
    try:
        loader = _LOADER(text)
        try:
            doc = _compose(loader, sm)
            if doc.root is None:
                return None, sm
            # What lies below an alias goes into the source map at every place it is used,
            # duplicate keys included, as if it had been written there.
            problems: list[ErrorDetail] = []
            done = 0
            walked: dict[yaml.Node, Any] = {}
            lines = sm.lines
            for loc, node, pos in doc.alias_uses:
                if node not in walked:
                    walked[node] = _walk(node)
                below, duplicates = walked[node]
                for rel, line in below:
                    lines[loc + rel] = line
                if duplicates:  # in document order: after the problems found before the alias
                    problems += doc.problems[done:pos]
                    problems += [_duplicate(key, first, sm, line, loc + rel)
                                 for key, first, line, rel in duplicates]
                    done = pos
            problems += doc.problems[done:]
            data = _construct(loader, doc.root, doc.merging)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        if _is_libyaml_depth_error(error):
            mark = error.problem_mark
            raise ConfigError(_too_deep(file, mark.line + 1 if mark else None)) from None
        exc = _pyyaml_wording(text, error)
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigError(ErrorDetail(f"invalid YAML: {msg}", file, line)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(ErrorDetail(f"invalid YAML: {exc}", file)) from None
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


def errors_from_validation(exc: ValidationError, sm: SourceMap, base: Loc = (),
                           model: type[BaseModel] | None = None) -> ConfigError:
    """Turn a pydantic ValidationError into a ConfigError whose details carry lines.

    A validator may raise a :class:`ConfigError` whose details hold their own ``loc`` (for
    problems that span fields, such as a cycle); those are expanded in place so each still
    points at its line. With the ``model`` validated, an unknown field names the field of that
    place spelt most like it (``gpu_type`` → "did you mean 'gpu_types'?").
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
            msg = _UNKNOWN_FIELD
            if model is not None and loc[len(base):] and isinstance(loc[-1], str):
                meant = _field_meant(model, loc[len(base):-1], loc[-1])
                if meant:
                    msg = f"unknown field; did you mean {meant!r}? (see `placer schema`)"
        details.append(ErrorDetail(msg, sm.file, sm.line(loc), format_loc(loc), loc))
    return ConfigError(_misspelt(details))


_UNKNOWN_FIELD = "unknown field (check the spelling; see `placer schema`)"


def _field_types(tp: Any) -> list[Any]:
    """The alternatives of an annotation: ``Annotated``, ``Optional`` and unions unwrapped."""
    out: list[Any] = []
    todo = [tp]
    while todo:
        t = todo.pop(0)
        if get_origin(t) is Annotated:
            todo.insert(0, get_args(t)[0])
        elif get_origin(t) in (Union, UnionType):
            todo[:0] = list(get_args(t))
        else:
            out.append(t)
    return out


def _field_meant(model: type[BaseModel], parent: Loc, key: str) -> str | None:
    """The field a user most likely meant by the unknown ``key`` at ``parent``: one spelt
    like it there (``gpu_type`` → ``gpu_types``), else the same name one level down
    (``gpus`` → ``resources.gpus``)."""
    here = fields_at(model, parent)
    close = difflib.get_close_matches(key, here, n=1, cutoff=0.75)
    if close:
        return close[0]
    for name in here:
        if key in fields_at(model, (*parent, name)):
            return f"{name}.{key}"
    return None


def fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The field names (as written: aliases) of the model found at ``loc`` inside ``model``.

    ``fields_at(Pipeline, ("jobs", 1))`` → Job's fields. Lists, tuples and mappings are
    stepped through by index or key; an empty list when ``loc`` leads to no model.
    """
    types: list[Any] = [model]
    for part in loc:
        nxt: list[Any] = []
        for t in (a for tp in types for a in _field_types(tp)):
            origin, args = get_origin(t), get_args(t)
            if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str):
                for name, info in t.model_fields.items():
                    if part in (name, info.alias):
                        nxt.append(info.annotation)
            elif origin in (tuple, list, frozenset, set) and isinstance(part, int) and args:
                nxt.append(args[0])
            elif origin is dict and isinstance(part, str) and len(args) == 2:
                nxt.append(args[1])
        types = nxt
    names: list[str] = []
    for t in (a for tp in types for a in _field_types(tp)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            names += [info.alias or name for name, info in t.model_fields.items()]
    return names


def _misspelt(details: list[ErrorDetail]) -> list[ErrorDetail]:
    """A required field missing beside an unknown one spelt like it is one error, not two.

    ``efect: forbid`` reads as "effect: Field required" and "efect: unknown field"; the user
    made one mistake, so it is reported once, at the misspelt key, naming the field meant.
    """
    missing = {d.loc: d for d in details if d.msg == "Field required" and d.loc
               and isinstance(d.loc[-1], str)}
    if not missing:
        return details
    drop: set[int] = set()
    out: list[ErrorDetail] = []
    for d in details:
        if d.msg.startswith("unknown field") and d.loc and isinstance(d.loc[-1], str):
            parent = d.loc[:-1]
            wanted = [loc[-1] for loc in missing if loc[:-1] == parent]
            close = difflib.get_close_matches(d.loc[-1], [str(w) for w in wanted], n=1,
                                              cutoff=0.6)
            if close:
                drop.add(id(missing[(*parent, close[0])]))
                out.append(ErrorDetail(
                    f"unknown field; did you mean {close[0]!r}? ({close[0]} is required and "
                    "missing; see `placer schema`)", d.file, d.line, d.field, d.loc))
                continue
        out.append(d)
    return [d for d in out if id(d) not in drop]


def validate(
    model: type[M], data: Any, sm: SourceMap, context: Mapping[str, Any] | None = None
) -> M:
    """Validate ``data`` into ``model``; errors name the file, the line and the field."""
    try:
        with _gc_paused():
            return model.model_validate(data, context=dict(context) if context else None)
    except ValidationError as exc:
        raise errors_from_validation(exc, sm, model=model) from None


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


YAML_SUFFIXES = (".yaml", ".yml")


def find_yaml_files(paths: Iterable[str | Path]
                    ) -> tuple[list[Path], list[str], list[ErrorDetail]]:
    """The YAML files ``paths`` name: files as given, folders walked to any depth.

    Returns the files (as given, each folder's in name order, each real file once), the other
    files met in the folders, and the problems: a path that does not exist, a folder with no
    YAML file in it or below it (a wrong path must not look like a clean check). Folders are
    followed through symlinks, each real folder once, so a symlink loop ends.
    """
    found: dict[Path, Path] = {}
    skipped: list[str] = []
    problems: list[ErrorDetail] = []
    for raw in paths:
        root = Path(raw)
        if root.is_file():
            found.setdefault(root.resolve(), root)
            continue
        if not root.is_dir():
            problems.append(ErrorDetail("file or folder not found", str(root)))
            continue
        met = 0
        seen: set[Path] = set()
        stack = [root]
        while stack:
            folder = stack.pop()
            if folder.resolve() in seen:
                continue
            seen.add(folder.resolve())
            try:
                entries = sorted(folder.iterdir(), key=lambda e: e.name)
            except OSError as exc:
                problems.append(ErrorDetail(f"cannot read folder: {exc.strerror}", str(folder)))
                continue
            for e in entries:
                if e.is_file() and e.suffix.lower() in YAML_SUFFIXES:
                    found.setdefault(e.resolve(), e)
                    met += 1
                elif e.is_file():
                    skipped.append(str(e))
            stack.extend(reversed([e for e in entries if e.is_dir()]))
        if not met:
            problems.append(ErrorDetail(
                "no YAML files (*.yaml, *.yml) in this folder or below it", str(root)))
    return list(found.values()), sorted(set(skipped)), problems
