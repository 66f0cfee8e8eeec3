"""Load pipelines from YAML, with errors that name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from placer.errors import CatalogError, ConfigError, ErrorDetail, PipelineError
from placer.models import Pipeline, ResolvedSite
from placer.yamlio import SourceMap, read_yaml, strip_header, validate


def load_pipeline_with_source(path: str | Path) -> tuple[Pipeline, SourceMap]:
    """Load a pipeline and the source map that places its fields in the file."""
    return pipeline_from_data(*read_yaml(path))


def pipeline_from_data(data: Any, sm: SourceMap) -> tuple[Pipeline, SourceMap]:
    """Validate parsed YAML into a Pipeline (for callers that already parsed the file)."""
    body = strip_header(data, sm, "Pipeline")
    for section in ("jobs", "datasets"):
        if isinstance(body.get(section), dict):
            sm = sm.rekey((section,), list(body[section]))
    try:
        pipeline = validate(Pipeline, body, sm)
    except ConfigError as exc:
        raise PipelineError(exc.details) from None
    _check_cloud_locations(pipeline, sm)
    return pipeline, sm


def load_pipeline(path: str | Path) -> Pipeline:
    """Load a pipeline YAML file.

    Raises:
        PipelineError: naming file, line and field for syntax errors, unknown fields, bad sizes
            or durations, unknown references, cycles, and cloud regions the catalog lacks.
    """
    return load_pipeline_with_source(path)[0]


def _check_cloud_locations(pipeline: Pipeline, sm: SourceMap) -> None:
    from placer.catalog import default_catalog

    catalog = default_catalog()
    problems: list[ErrorDetail] = []
    for i, d in enumerate(pipeline.datasets):
        if d.location is None or d.location.startswith("onprem:"):
            continue
        try:
            catalog.location(d.location)
        except CatalogError as exc:
            problems.append(sm.detail(("datasets", i, "location"), str(exc.args[0])))
    if problems:
        raise PipelineError(problems)


def check_dataset_sites(
    pipeline: Pipeline, sites: list[ResolvedSite], sm: SourceMap | None = None
) -> None:
    """On-prem dataset locations must be the location of some site of the inventory."""
    onprem = {s.location.key for s in sites if s.kind == "onprem"}
    problems: list[ErrorDetail] = []
    for i, d in enumerate(pipeline.datasets):
        if d.location and d.location.startswith("onprem:") and d.location not in onprem:
            known = ", ".join(sorted(onprem)) or "none"
            msg = (
                f"dataset {d.name!r} is at {d.location}, but no on-prem site of the inventory "
                f"is there (on-prem locations: {known})"
            )
            loc = ("datasets", i, "location")
            problems.append(sm.detail(loc, msg) if sm else ErrorDetail(msg, loc=loc))
    if problems:
        raise PipelineError(problems)
