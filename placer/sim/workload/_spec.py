"""The one-line form of a workload: ``--trace`` on the command line and a scenario's
``workload.trace`` (``itp:cluster04``, ``csv:PATH``, ``synthetic:KEY=VALUE,...``,
``pipelines:KEY=VALUE,...``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Final

from placer.sim.jobs import Workload
from placer.sim.workload._checks import fail, require
from placer.sim.workload._generators import pipelines, synthetic
from placer.sim.workload._traces import csv_trace, itp_trace


def _mix_from_text(text: str) -> dict[int, float]:
    """``1:0.7/8:0.3`` → ``{1: 0.7, 8: 0.3}`` (``/`` because ``,`` separates keys)."""
    out: dict[int, float] = {}
    for part in text.split("/"):
        gpus, sep, p = part.partition(":")
        if not sep:
            raise ValueError(f"expected GPUS:SHARE, got {part!r}")
        out[int(gpus)] = float(p)
    return out


_Converter = Callable[[str], object]

_SYNTHETIC_KEYS: Final[Mapping[str, tuple[str, _Converter]]] = MappingProxyType(
    {
        "rate": ("rate_per_h", float),
        "rate_per_h": ("rate_per_h", float),
        "hours": ("hours", float),
        "seed": ("seed", int),
        "arrivals": ("arrivals", str),
        "cv": ("cv", float),
        "gpu_mix": ("gpu_mix", _mix_from_text),
        "runtime": ("runtime", str),
        "mean": ("mean_runtime_h", float),
        "mean_runtime_h": ("mean_runtime_h", float),
        "min_runtime_h": ("min_runtime_h", float),
        "max_runtime_h": ("max_runtime_h", float),
    }
)
_PIPELINE_KEYS: Final[Mapping[str, tuple[str, _Converter]]] = MappingProxyType(
    {
        "count": ("count", int),
        "rate": ("rate_per_h", float),
        "rate_per_h": ("rate_per_h", float),
        "shape": ("shape", str),
        "sweep_width": ("sweep_width", int),
        "sweep_share": ("sweep_share", float),
        "seed": ("seed", int),
        "arrivals": ("arrivals", str),
        "cv": ("cv", float),
        "gpu_mix": ("gpu_mix", _mix_from_text),
    }
)


def _keywords(
    spec: str, body: str, keys: Mapping[str, tuple[str, _Converter]], required: Sequence[str]
) -> dict[str, object]:
    kwargs: dict[str, object] = {}
    for item in filter(None, (s.strip() for s in body.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in keys:
            raise fail(
                f"{spec!r}: unknown or malformed {item!r}; keys: {', '.join(keys)}", field="trace"
            )
        param, convert = keys[key]
        try:
            kwargs[param] = convert(value.strip())
        except ValueError as e:
            raise fail(f"{spec!r}: bad value for {key}: {e}", field="trace") from e
    missing = [k for k in required if k not in kwargs]
    if missing:
        raise fail(f"{spec!r}: needs {', '.join(missing)}", field="trace")
    return kwargs


def parse_trace_spec(spec: str) -> Workload:
    """The workload a ``--trace`` argument names.

    - ``itp:cluster04`` / ``itp:07`` / ``itp:4`` (``itp`` alone: cluster04)
    - ``csv:PATH`` — see :func:`csv_trace`
    - ``synthetic:rate=32,hours=3,seed=1`` — keys of :func:`synthetic` (``rate`` and ``mean``
      abbreviate ``rate_per_h`` and ``mean_runtime_h``; ``gpu_mix=1:0.7/8:0.3``)
    - ``pipelines:count=200,rate=4,shape=mixed`` — keys of :func:`pipelines`
    """
    kind, _, body = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "itp":
        return itp_trace(body.strip() or "cluster04")
    if kind == "csv":
        require(bool(body.strip()), f"{spec!r}: csv needs a path, csv:PATH", "trace")
        return csv_trace(body.strip())
    if kind == "synthetic":
        kw = _keywords(spec, body, _SYNTHETIC_KEYS, ("rate_per_h", "hours"))
        return synthetic(**kw)  # type: ignore[arg-type]
    if kind == "pipelines":
        kw = _keywords(spec, body, _PIPELINE_KEYS, ("count", "rate_per_h"))
        return pipelines(**kw)  # type: ignore[arg-type]
    raise fail(
        f"unknown trace {spec!r}; expected itp:CLUSTER, csv:PATH, synthetic:KEY=VALUE,... "
        "or pipelines:KEY=VALUE,...",
        field="trace",
    )
