"""Parse human quantities (``800GB``, ``6h``, ``$2.5/h``, ``10Gbps``) into plain numbers.

The models store numbers in one unit each (GB, hours, USD, Gbit/s) so the optimizer never
sees a string; these parsers run inside pydantic validators and do no I/O.

>>> parse_size("1.5TB"), parse_size("512MiB"), parse_duration("1h30m"), parse_price("$2.5/h")
(1500.0, 0.536870912, 1.5, 2.5)
"""

from __future__ import annotations

import functools
import math
import re

_SIZE_UNITS_GB = {
    "b": 1e-9,
    "kb": 1e-6,
    "mb": 1e-3,
    "gb": 1.0,
    "tb": 1e3,
    "pb": 1e6,
    "kib": 1024 / 1e9,
    "mib": 1024**2 / 1e9,
    "gib": 1024**3 / 1e9,
    "tib": 1024**4 / 1e9,
    "pib": 1024**5 / 1e9,
}
_DURATION_UNITS_H = {"s": 1 / 3600, "m": 1 / 60, "min": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0}
_BANDWIDTH_UNITS_GBPS = {"bps": 1e-9, "kbps": 1e-6, "mbps": 1e-3, "gbps": 1.0, "tbps": 1e3}

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_SIZE_RE = re.compile(rf"^\s*(?P<n>{_NUM})\s*(?P<u>[kmgtp]?i?b)?\s*$", re.IGNORECASE)
_DUR_PART_RE = re.compile(rf"(?P<n>{_NUM})\s*(?P<u>min|[smhdw])", re.IGNORECASE)
_PRICE_RE = re.compile(
    rf"^\s*\$?\s*(?P<n>{_NUM})\s*(?:usd)?\s*(?:/\s*(?P<per>h|hr|hour|gb))?\s*$", re.IGNORECASE
)
_BW_RE = re.compile(rf"^\s*(?P<n>{_NUM})\s*(?P<u>[kmgt]?bps)?\s*$", re.IGNORECASE)


def _any_case(word: str) -> str:
    """``gb`` → ``[gG][bB]``: JSON Schema patterns have no flags, and units are any case."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


# The same grammars as JSON Schema patterns (ECMA-262, no flags), for `placer schema`: an
# editor then underlines ``12 hours`` as the loader would refuse it. tests/test_validate_schema.py
# checks that each pattern accepts exactly the text its parser reads (bounds aside).
_JS_NUM = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_JS_SIZE_UNIT = "|".join(_any_case(u) for u in sorted(_SIZE_UNITS_GB, key=len, reverse=True))
SIZE_PATTERN = rf"^\s*{_JS_NUM}\s*(?:{_JS_SIZE_UNIT})?\s*$"
"""Text :func:`parse_size` reads (``800GB``, ``1.5 TB``, ``512MiB``, ``800``)."""
_JS_DUR_UNIT = "|".join(_any_case(u) for u in ("min", "s", "m", "h", "d", "w"))
DURATION_PATTERN = rf"^\s*(?:{_JS_NUM}\s*(?:{_JS_DUR_UNIT})\s*)+$"
"""Text :func:`parse_duration` reads (``6h``, ``90m``, ``1h 30m``); a unit is required."""
_JS_PER = "|".join(_any_case(u) for u in ("hour", "hr", "h", "gb"))
PRICE_PATTERN = (rf"^\s*\$?\s*{_JS_NUM}\s*(?:{_any_case('usd')})?\s*(?:/\s*(?:{_JS_PER}))?"
                 r"\s*$")
"""Text :func:`parse_price` reads (``$2.50/h``, ``0.09 USD/GB``, ``2.5``)."""
_JS_BW_UNIT = "|".join(_any_case(u) for u in sorted(_BANDWIDTH_UNITS_GBPS, key=len, reverse=True))
BANDWIDTH_PATTERN = rf"^\s*{_JS_NUM}\s*(?:{_JS_BW_UNIT})?\s*$"
"""Text :func:`parse_bandwidth` reads (``10Gbps``, ``400 Mbps``, ``10``)."""


# What a real job, site or plan can be; more is a typo, or a stand-in for "unlimited" that the
# optimizer cannot price (and that overflows to inf in the sums over a big pipeline).
MAX_SIZE_GB = 1e9
"""1 EB, for one dataset, output or memory size: the largest training corpora are a few PB."""
MAX_HOURS = 87_600.0
"""Ten years (8,760 h x 10), for a run time, deadline or provisioning delay."""
MAX_USD = 1e9
"""A billion dollars, for any price, penalty or budget."""
MAX_GBPS = 1e6
"""1 Pbit/s, for a link between two sites."""

_LIMITS = {
    "size": (MAX_SIZE_GB, "1,000,000,000 GB (1 EB)"),
    "duration": (MAX_HOURS, "87,600 h (ten years)"),
    "price": (MAX_USD, "$1,000,000,000"),
    "bandwidth": (MAX_GBPS, "1,000,000 Gbps"),
}


def _show(text: object) -> str:
    """``repr`` for a message, short even for a 5,000-digit number."""
    if isinstance(text, int) and abs(text) > 10**18:
        return f"an integer of about 1e{int(abs(text).bit_length() * math.log10(2))}"
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _checked(value: float, what: str, text: object) -> float:
    """``value`` if it is a number in ``[0, limit]``; NaN and infinity are refused too."""
    if math.isnan(value) or (math.isinf(value) and isinstance(text, float)):
        raise ValueError(f"{what} must be finite, got {_show(text)}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {_show(text)}")
    limit, limit_text = _LIMITS[what]
    if value > limit:  # '1e400GB' or a 400-digit int overflow to inf and end up here
        raise ValueError(f"{what} must be at most {limit_text}, got {_show(text)}")
    return value


def _number(value: object, what: str) -> float | None:
    """Accept a plain int/float (already in the canonical unit); reject bools."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number or a string like the examples, got {value!r}")
    if isinstance(value, int | float):
        try:
            n = float(value)
        except OverflowError:  # an int past 1.8e308
            n = math.inf if value > 0 else -math.inf
        return _checked(n, what, value)
    return None


def parse_size(value: object) -> float:
    """Size in decimal GB: ``800GB`` → 800.0, ``1.5TB`` → 1500.0; a bare number is GB."""
    n = _number(value, "size")
    if n is not None:
        return n
    if not isinstance(value, str):
        raise ValueError(f"size must be a string like '800GB', got {value!r}")
    return _size_text(value)


# The parsers of text are cached: a 100,000-job file repeats the same few hundred quantities
# ("3h", "240GB") hundreds of thousands of times. Errors are not cached (they raise).
@functools.lru_cache(maxsize=4096)
def _size_text(value: str) -> float:
    if value.strip().startswith("-"):
        raise ValueError(f"size must not be negative, got {value!r}")
    m = _SIZE_RE.match(value)
    if not m:
        raise ValueError(f"cannot read size {value!r}; write it like '800GB', '1.5TB' or '512MiB'")
    unit = (m["u"] or "gb").lower()
    return _checked(float(m["n"]) * _SIZE_UNITS_GB[unit], "size", value)


def parse_duration(value: object) -> float:
    """Duration in hours: ``6h`` → 6.0, ``90m`` → 1.5, ``1h30m`` → 1.5; a bare number is hours."""
    n = _number(value, "duration")
    if n is not None:
        return n
    if not isinstance(value, str):
        raise ValueError(f"duration must be a string like '6h' or '90m', got {value!r}")
    return _duration_text(value)


@functools.lru_cache(maxsize=4096)
def _duration_text(value: str) -> float:
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"duration must not be negative, got {value!r}")
    pos, total, parts = 0, 0.0, 0
    for m in _DUR_PART_RE.finditer(text):
        if text[pos : m.start()].strip():
            break
        total += float(m["n"]) * _DURATION_UNITS_H[m["u"].lower()]
        pos, parts = m.end(), parts + 1
    if parts == 0 or text[pos:].strip():
        raise ValueError(f"cannot read duration {value!r}; write it like '6h', '90m' or '1h30m'")
    return _checked(total, "duration", value)


def parse_price(value: object) -> float:
    """Price in USD: ``$2.5``, ``2.5``, ``$2.5/h``, ``0.09 USD/GB`` → the number."""
    n = _number(value, "price")
    if n is not None:
        return n
    if not isinstance(value, str):
        raise ValueError(f"price must be a string like '$2.50/h', got {value!r}")
    return _price_text(value)


@functools.lru_cache(maxsize=4096)
def _price_text(value: str) -> float:
    if value.strip().lstrip("$").strip().startswith("-"):
        raise ValueError(f"price must not be negative, got {value!r}")
    m = _PRICE_RE.match(value)
    if not m:
        raise ValueError(f"cannot read price {value!r}; write it like '$2.50/h' or '0.09'")
    return _checked(float(m["n"]), "price", value)


def parse_bandwidth(value: object) -> float:
    """Bandwidth in Gbit/s: ``10Gbps`` → 10.0, ``400Mbps`` → 0.4; a bare number is Gbit/s."""
    n = _number(value, "bandwidth")
    if n is not None:
        return n
    if not isinstance(value, str):
        raise ValueError(f"bandwidth must be a string like '10Gbps', got {value!r}")
    return _bandwidth_text(value)


@functools.lru_cache(maxsize=4096)
def _bandwidth_text(value: str) -> float:
    m = _BW_RE.match(value)
    if not m:
        raise ValueError(f"cannot read bandwidth {value!r}; write it like '10Gbps' or '400Mbps'")
    return _checked(float(m["n"]) * _BANDWIDTH_UNITS_GBPS[(m["u"] or "gbps").lower()],
                    "bandwidth", value)


def format_duration(hours: float) -> str:
    """Render hours for humans: 0.25 → '15m', 6.5 → '6h30m', 0.01 → '36s'."""
    if 0 < hours < 1 / 60:
        return f"{max(1, round(hours * 3600))}s"
    minutes = round(hours * 60)
    h, m = divmod(minutes, 60)
    if h and m:
        return f"{h}h{m:02d}m"
    return f"{h}h" if h else f"{m}m"
