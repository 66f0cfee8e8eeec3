"""Load pipelines from YAML, with errors that name the file, the line and the field."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from placer.errors import CatalogError, ConfigError, ErrorDetail, PipelineError
from placer.models import Inventory, Pipeline, ResolvedSite
from placer.yamlio import Loc, SourceMap, format_loc, read_yaml, strip_header, validate

if TYPE_CHECKING:
    from placer.catalog import Catalog


def load_pipeline_with_source(path: str | Path) -> tuple[Pipeline, SourceMap]:
    """Load a pipeline and the source map that places its fields in the file."""
    return pipeline_from_data(*read_yaml(path))


def pipeline_from_data(data: Any, sm: SourceMap) -> tuple[Pipeline, SourceMap]:
    """Validate parsed YAML into a Pipeline (for callers that already parsed the file)."""
    body = strip_header(data, sm, "Pipeline")
    names: dict[str, list[str | None]] = {}
    for section in ("jobs", "datasets"):
        given = body.get(section)
        if isinstance(given, dict):
            sm = sm.rekey((section,), list(given))
            names[section] = [str(k) for k in given]
        elif isinstance(given, list):
            names[section] = [_name_of(item) for item in given]
    try:
        pipeline = validate(Pipeline, body, sm)
    except ConfigError as exc:
        raise PipelineError([by_name(d, names) for d in exc.details]) from None
    _check_cloud_locations(pipeline, sm)
    return pipeline, sm


def _name_of(item: Any) -> str | None:
    name = item.get("name") if isinstance(item, dict) else None
    return name if isinstance(name, str) and name else None


def by_name(d: ErrorDetail, names: Mapping[str, Sequence[str | None]]) -> ErrorDetail:
    """``jobs[1].gpu_type`` → ``jobs.train.gpu_type``: users know their jobs by name.

    ``names`` holds, per section, the name of each item by index (None: it has none, and the
    index stays). The line is the one already found; only the field is renamed.
    """
    loc = d.loc
    if len(loc) >= 2 and isinstance(loc[0], str) and isinstance(loc[1], int):
        listed = names.get(loc[0], ())
        name = listed[loc[1]] if loc[1] < len(listed) else None
        if name is not None:
            loc = (loc[0], name, *loc[2:])
            return ErrorDetail(d.msg, d.file, d.line, format_loc(loc), loc)
    return d


def _named_detail(sm: SourceMap, index_loc: Loc, name: str, msg: str) -> ErrorDetail:
    """An error at ``index_loc`` (whose line the source map knows), shown by ``name``."""
    loc = (index_loc[0], name, *index_loc[2:])
    return ErrorDetail(msg, sm.file, sm.line(index_loc), format_loc(loc), loc)


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
            problems.append(_named_detail(sm, ("datasets", i, "location"), d.name,
                                          str(exc.args[0])))
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
            loc: Loc = ("datasets", i, "location")
            named: Loc = ("datasets", d.name, "location")
            problems.append(_named_detail(sm, loc, d.name, msg) if sm
                            else ErrorDetail(msg, loc=named))
    if problems:
        raise PipelineError(problems)


def known_gpu_types(inventories: Iterable[Inventory] = (),
                    catalog: Catalog | None = None) -> list[str]:
    """Every GPU type a job could be placed on: the catalog's offers and the inventories'
    pools and offers (an on-prem type is known only from an inventory), sorted, once each."""
    from placer.catalog import default_catalog

    cat = catalog if catalog is not None else default_catalog()
    found = {o.gpu for _, o in cat.all_offers()}
    for inv in inventories:
        for site in inv.sites:
            found.update(p.gpu for p in site.pools)
            found.update(o.gpu for o in site.offers or ())
    return sorted(found)


def gpu_type_problems(pipeline: Pipeline, sm: SourceMap, known: Sequence[str]) -> list[ErrorDetail]:
    """Keys of a job's ``gpu_types`` that no known GPU type matches, with "did you mean".

    Matching is the planner's own (:func:`placer.catalog.gpu_matches`: case-insensitive, a
    family name covers its variants), so ``v100`` is accepted as the planner accepts it, and a
    name refused here is one the planner could never place: without this check it surfaced only
    as an infeasible plan. The suggestion is the closest known type, compared case-insensitively.
    """
    from placer.catalog import gpu_matches

    names = {**{g.split("-")[0].casefold(): g.split("-")[0] for g in known},
             **{g.casefold(): g for g in known}}
    hints: dict[str, str | None] = {}  # each distinct name checked once (100,000 jobs share few)
    problems: list[ErrorDetail] = []
    for i, job in enumerate(pipeline.jobs):
        for gpu in job.gpu_types:
            if gpu not in hints:
                if any(gpu_matches(gpu, g) for g in known):
                    hints[gpu] = None
                else:
                    close = difflib.get_close_matches(gpu.casefold(), list(names), n=1,
                                                      cutoff=0.6)
                    hints[gpu] = f"; did you mean {names[close[0]]!r}?" if close else ""
            hint = hints[gpu]
            if hint is None:
                continue
            problems.append(_named_detail(
                sm, ("jobs", i, "gpu_types", gpu), job.name,
                f"unknown GPU type {gpu!r}: no catalog offer or inventory pool has it{hint} "
                "(`placer catalog` lists the cloud's; an on-prem type is known from the "
                "inventory: validate the pipeline with it)"))
    return problems
