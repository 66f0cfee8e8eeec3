"""Parse human quantities (``800GB``, ``6h``, ``$2.5/h``, ``10Gbps``) into plain numbers.

The models store numbers in one unit each (GB, hours, USD, Gbit/s) so the optimizer never
sees a string; these parsers run inside pydantic validators and do no I/O.

>>> parse_size("1.5TB"), parse_size("512MiB"), parse_duration("1h30m"), parse_price("$2.5/h")
(1500.0, 0.536870912, 1.5, 2.5)
"""

from __future__ import annotations

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


def _finite_nonneg(value: float, what: str, text: object) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {text!r}")
    if value < 0:
        raise ValueError(f"{what} must not be negative, got {text!r}")
    return value


def _number(value: object, what: str) -> float | None:
    """Accept a plain int/float (already in the canonical unit); reject bools."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number or a string like the examples, got {value!r}")
    if isinstance(value, int | float):
        return _finite_nonneg(float(value), what, value)
    return None


def parse_size(value: object) -> float:
    """Size in decimal GB: ``800GB`` → 800.0, ``1.5TB`` → 1500.0; a bare number is GB."""
    n = _number(value, "size")
    if n is not None:
        return n
    if not isinstance(value, str):
        raise ValueError(f"size must be a string like '800GB', got {value!r}")
    if value.strip().startswith("-"):
        raise ValueError(f"size must not be negative, got {value!r}")
    m = _SIZE_RE.match(value)
    if not m:
        raise ValueError(f"cannot read size {value!r}; write it like '800GB', '1.5TB' or '512MiB'")
    unit = (m["u"] or "gb").lower()
    return _finite_nonneg(float(m["n"]) * _SIZE_UNITS_GB[unit], "size", value)


def parse_duration(value: object) -> float:
    """Duration in hours: ``6h`` → 6.0, ``90m`` → 1.5, ``1h30m`` → 1.5; a bare number is hours."""
    n = _number(value, "duration")
    if n is not None:
        return n
    if not isinstance(value, str):
        raise ValueError(f"duration must be a string like '6h' or '90m', got {value!r}")
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
    return _finite_nonneg(total, "duration", value)


def parse_price(value: object) -> float:
    """Price in USD: ``$2.5``, ``2.5``, ``$2.5/h``, ``0.09 USD/GB`` → the number."""
    n = _number(value, "price")
    if n is not None:
        return n
    if not isinstance(value, str):
        raise ValueError(f"price must be a string like '$2.50/h', got {value!r}")
    if value.strip().lstrip("$").strip().startswith("-"):
        raise ValueError(f"price must not be negative, got {value!r}")
    m = _PRICE_RE.match(value)
    if not m:
        raise ValueError(f"cannot read price {value!r}; write it like '$2.50/h' or '0.09'")
    return _finite_nonneg(float(m["n"]), "price", value)


def parse_bandwidth(value: object) -> float:
    """Bandwidth in Gbit/s: ``10Gbps`` → 10.0, ``400Mbps`` → 0.4; a bare number is Gbit/s."""
    n = _number(value, "bandwidth")
    if n is not None:
        return n
    if not isinstance(value, str):
        raise ValueError(f"bandwidth must be a string like '10Gbps', got {value!r}")
    m = _BW_RE.match(value)
    if not m:
        raise ValueError(f"cannot read bandwidth {value!r}; write it like '10Gbps' or '400Mbps'")
    return _finite_nonneg(float(m["n"]) * _BANDWIDTH_UNITS_GBPS[(m["u"] or "gbps").lower()],
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
