"""Builders for policy tests: sites, datasets, jobs, pipelines and policy sets in one line each."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from placer.models import Dataset, Job, Location, Pipeline, ResolvedSite
from placer.policy import PolicySet


def site(name: str, key: str, country: str, *, jurisdictions: Iterable[str] = ()) -> ResolvedSite:
    provider, region = key.split(":", 1)
    return ResolvedSite(
        name=name,
        kind="onprem" if provider == "onprem" else "cloud",
        location=Location(
            provider=provider,  # type: ignore[arg-type]
            region=region,
            country=country,
            jurisdictions=frozenset(jurisdictions),
        ),
    )


# A small world: on-prem in Germany and the US, EEA clouds, UK, Switzerland and the US.
FRA_DC = site("fra-dc", "onprem:fra-dc1", "DE")
NYC_DC = site("nyc-dc", "onprem:nyc-dc1", "US")
AWS_FRA = site("aws-fra", "aws:eu-central-1", "DE")
AWS_LON = site("aws-lon", "aws:eu-west-2", "GB")
AWS_ZRH = site("aws-zrh", "aws:eu-central-2", "CH")
GCP_NL = site("gcp-nl", "gcp:europe-west4", "NL")
GCP_IOWA = site("gcp-iowa", "gcp:us-central1", "US")
AZ_NO = site("az-no", "azure:norwayeast", "NO")
AWS_VA = site("aws-va", "aws:us-east-1", "US")
SITES = (FRA_DC, NYC_DC, AWS_FRA, AWS_LON, AWS_ZRH, GCP_NL, GCP_IOWA, AZ_NO, AWS_VA)
ALL = tuple(s.name for s in SITES)


def ds(name: str, location: str | None = "aws:eu-central-1", **tags: str) -> Dataset:
    return Dataset(name=name, location=location, tags=tags, size=10)


def job(
    name: str,
    *inputs: str,
    after: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
    outputs: Iterable[str] = ("out",),
) -> Job:
    return Job(
        name=name,
        command=f"python {name}.py",
        gpu_types={"A100": 1},
        inputs=inputs,
        after=tuple(after),
        labels=dict(labels or {}),
        outputs=dict.fromkeys(outputs, 1.0),
    )


def pipeline(datasets: Iterable[Dataset], *jobs: Job) -> Pipeline:
    return Pipeline(name="p", datasets=tuple(datasets), jobs=jobs)


def rule(
    rid: str, effect: str, sites: Any, match: Mapping[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": rid,
        "effect": effect,
        "match": dict(match or {}),
        "sites": sites,
        "message": f"message of {rid}",
    }
    if effect == "prefer":
        out["penalty"] = kw.pop("penalty", 10)
    out.update(kw)
    return out


def policies(
    *rules: Mapping[str, Any],
    locations: Mapping[str, Any] | None = None,
    required_tags: Iterable[str] = (),
) -> PolicySet:
    return PolicySet.model_validate(
        {
            "name": "test",
            "rules": list(rules),
            "locations": dict(locations or {}),
            "required_tags": list(required_tags),
        }
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


HEADER = "apiVersion: placer/v1\nkind: PolicySet\n"
