"""The policy language (first cut): site patterns, location sets, rules and the policy set.

A policy file is one :class:`PolicyFile`; :func:`placer.policy.load_policies` merges files into
one :class:`PolicySet`. Everything here is a frozen pydantic model that forbids unknown fields,
so a misspelt key (``efect:``) is an error naming its file and line, never a silently ignored
rule. Validators parse and check text only; they do no I/O.

Site patterns (the values of ``sites``, ``include`` and ``exclude``)::

    aws:eu-*            a site whose location key (provider:region) matches the glob
    onprem:*            every on-prem site
    jurisdiction:EEA    a site whose location belongs to that jurisdiction (EU, EEA, DE, US, …)
    country:DE          a site whose location is in that country (ISO 3166-1 alpha-2)
    site:gpu-*          a site whose name matches the glob
    provider:gcp        every site of that provider (onprem, aws, gcp, azure)

A ``sites`` entry without a colon names a location set.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from placer.errors import ErrorDetail, PolicyError
from placer.models import NAME_RE, PROVIDERS, USD, Model, Name, ResolvedSite, check_country
from placer.tags import clean

Effect = Literal["forbid", "require", "prefer"]
EFFECTS: tuple[str, ...] = ("forbid", "require", "prefer")
"""Effects in the order they are applied: hard before soft."""

API_VERSION = "placer/v1"
PATTERN_PREFIXES: tuple[str, ...] = (*PROVIDERS, "jurisdiction", "country", "site", "provider")

_REGION_GLOB_RE = re.compile(r"^[a-z0-9._*?\[\]!-]+$")
_SITE_GLOB_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]+$")
_JURISDICTION_RE = re.compile(r"^[A-Z][A-Z0-9_-]*$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_SET_NAME_RE = re.compile(NAME_RE)


def check_pattern(text: str) -> str:
    """Check one site pattern's syntax; return it unchanged or raise ``ValueError``.

    >>> check_pattern("aws:eu-*"), check_pattern("jurisdiction:EEA")
    ('aws:eu-*', 'jurisdiction:EEA')
    """
    prefix, sep, rest = text.partition(":")
    options = ", ".join(f"{p}:" for p in PATTERN_PREFIXES)
    if not sep:
        raise ValueError(
            f"{text!r} is not a site pattern; write provider:region (aws:eu-*), "
            "jurisdiction:EU, country:DE, site:<name glob> or provider:gcp"
        )
    if prefix not in PATTERN_PREFIXES:
        raise ValueError(
            f"unknown pattern prefix {prefix!r} in {text!r}; expected one of {options}"
        )
    if not rest:
        raise ValueError(f"pattern {text!r} has nothing after {prefix!r}")
    if prefix in PROVIDERS:
        if not _REGION_GLOB_RE.match(rest):
            raise ValueError(
                f"bad region glob {rest!r} in {text!r}: use lowercase letters, digits, '.', '_', "
                "'-' and the wildcards * ? [ ]"
            )
    elif prefix == "jurisdiction":
        if not _JURISDICTION_RE.match(rest):
            raise ValueError(
                f"bad jurisdiction {rest!r} in {text!r}: write it in capitals, e.g. EU, EEA, DE"
            )
    elif prefix == "country":
        if not _COUNTRY_RE.match(rest):
            raise ValueError(
                f"bad country {rest!r} in {text!r}: write an ISO 3166-1 alpha-2 code, e.g. DE"
            )
        check_country(rest)
    elif prefix == "site":
        if not _SITE_GLOB_RE.match(rest):
            raise ValueError(f"bad site-name glob {rest!r} in {text!r}")
    elif rest not in PROVIDERS:
        raise ValueError(
            f"unknown provider {rest!r} in {text!r}; expected one of {', '.join(PROVIDERS)}"
        )
    return text


def check_site_ref(text: str) -> str:
    """A ``sites`` entry: a pattern (has a colon) or the name of a location set."""
    if ":" in text:
        return check_pattern(text)
    if not _SET_NAME_RE.match(text):
        raise ValueError(
            f"{text!r} is neither a location-set name nor a site pattern "
            "(patterns look like aws:eu-*, jurisdiction:EU, site:<name>)"
        )
    return text


def pattern_matches(pattern: str, site: ResolvedSite) -> bool:
    """Whether a (checked) site pattern matches a site."""
    prefix, _, rest = pattern.partition(":")
    loc = site.location
    if prefix == "jurisdiction":
        return rest in loc.jurisdictions
    if prefix == "country":
        return loc.country == rest
    if prefix == "site":
        return fnmatchcase(site.name, rest)
    if prefix == "provider":
        return loc.provider == rest
    return fnmatchcase(loc.key, pattern)


def _non_empty(value: tuple[str, ...]) -> tuple[str, ...]:
    # Checked after the items, so a bad item is not also reported as "empty".
    if not value:
        raise ValueError("must not be empty")
    return value


def _as_tuple(value: Any) -> Any:
    """Accept a single string where a list is expected: ``sites: eea`` = ``sites: [eea]``."""
    return (value,) if isinstance(value, str) else value


SitePattern = Annotated[str, AfterValidator(check_pattern)]
SiteRef = Annotated[str, AfterValidator(check_site_ref)]
def _clean_text(value: str) -> str:
    out = clean(value, "text")
    if not out:
        raise ValueError("must not be empty or only spaces")
    return out


TagKey = Annotated[str, AfterValidator(_clean_text), Field(min_length=1, max_length=128)]
TagValue = Annotated[str, AfterValidator(_clean_text), Field(min_length=1)]
MatchValues = Annotated[
    tuple[TagValue, ...],
    BeforeValidator(_as_tuple),
    AfterValidator(_non_empty),
    Field(description='a value, a list of values (any of), or "*" (key present)'),
]


class LocationSet(Model):
    """A named set of sites: those matching any ``include`` pattern and no ``exclude`` pattern.

    In YAML a plain list is shorthand for ``include`` only.
    """

    include: Annotated[tuple[SitePattern, ...], AfterValidator(_non_empty)]
    exclude: tuple[SitePattern, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _plain_list(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            return {"include": data}
        return data

    def contains(self, site: ResolvedSite) -> bool:
        return any(pattern_matches(p, site) for p in self.include) and not any(
            pattern_matches(p, site) for p in self.exclude
        )


class Match(Model):
    """Which jobs a rule applies to. Every key given must match; ``{}`` matches every job.

    ``tags`` are the job's lineage tags (inherited from the datasets and job outputs it reads,
    transitively); ``labels`` the job's own labels; ``jobs`` globs over job names. Tag and label
    keys and values compare in :func:`placer.tags.canonical` form (case, width, surrounding
    spaces and look-alike letters folded: ``residency: eu`` matches ``ＥＵ``), so a tag spelt
    another way cannot slip past a rule.
    """

    tags: dict[TagKey, MatchValues] = Field(default_factory=dict)
    labels: dict[TagKey, MatchValues] = Field(default_factory=dict)
    jobs: Annotated[
        tuple[Annotated[str, Field(min_length=1)], ...], BeforeValidator(_as_tuple)
    ] = ()


class Rule(Model):
    """One rule: which jobs (``match``), what it does (``effect``) and where (``sites``)."""

    id: Name
    effect: Effect
    match: Match
    sites: Annotated[tuple[SiteRef, ...], BeforeValidator(_as_tuple), AfterValidator(_non_empty)]
    message: str = Field(min_length=1, description="why the rule exists, shown in explanations")
    penalty: USD | None = Field(
        default=None, description="prefer only: USD added per job placed outside ``sites``"
    )

    @model_validator(mode="after")
    def _penalty_fits_effect(self) -> Rule:
        if self.effect == "prefer":
            if self.penalty is None or self.penalty <= 0:
                raise PolicyError(
                    ErrorDetail(
                        "a prefer rule needs a positive penalty (USD per job placed outside "
                        "its sites), e.g. penalty: $25",
                        loc=("penalty",),
                    )
                )
        elif self.penalty is not None:
            raise PolicyError(
                ErrorDetail(
                    f"penalty applies to prefer rules only; a {self.effect} rule is hard",
                    loc=("penalty",),
                )
            )
        return self


class PolicyFile(Model):
    """One policy YAML document, as written."""

    api_version: Literal["placer/v1"] = Field(alias="apiVersion")
    kind: Literal["PolicySet"]
    name: Name
    description: str = ""
    required_tags: tuple[TagKey, ...] = Field(
        default=(), description="tag keys every dataset must carry; a dataset without is held"
    )
    locations: dict[Name, LocationSet] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    declared_locations: Annotated[tuple[SitePattern, ...], BeforeValidator(_as_tuple)] = Field(
        default=(),
        description="places rules name on purpose although no catalog or inventory knows them "
        "(an announced region, a data centre of another inventory); anything else a rule names "
        "must be known",
    )


class PolicySet(Model):
    """Policies merged from one or more files: what :func:`evaluate` applies.

    The order of rules and of files never changes a decision; :func:`load_policies` keeps rules
    sorted by id and location sets by name so equal content gives equal objects. ``sources``
    (files) and ``origins`` (rule id → ``file:line``) are evidence, not content: they are left
    out of :func:`policy_hash`.
    """

    name: str = Field(default="empty", description="file names joined by + when merged")
    description: str = ""
    required_tags: tuple[TagKey, ...] = ()
    locations: dict[Name, LocationSet] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    sources: tuple[str, ...] = Field(default=(), description="files the policies came from")
    origins: dict[str, str] = Field(
        default_factory=dict, description="rule id → file:line where it is defined"
    )
    skipped: tuple[str, ...] = Field(
        default=(), description="files in the policy folders that are not policy files"
    )
    declared_locations: tuple[str, ...] = Field(
        default=(), description="places named on purpose although nothing knows them"
    )
    references: dict[str, tuple[str | None, int | None, str]] = Field(
        default_factory=dict,
        description="every site pattern the rules and sets use → (file, line, field) of its "
        "first use; checked against the inventory by placer.plan",
    )

    @model_validator(mode="after")
    def _references(self) -> PolicySet:
        problems: list[ErrorDetail] = []
        seen: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            if rule.id in seen:
                problems.append(
                    ErrorDetail(
                        f"duplicate rule id {rule.id!r} (also rules[{seen[rule.id]}]); "
                        "rule ids must be unique across all policy files",
                        loc=("rules", i, "id"),
                    )
                )
            seen.setdefault(rule.id, i)
            for k, ref in enumerate(rule.sites):
                if ":" not in ref and ref not in self.locations:
                    problems.append(
                        ErrorDetail(
                            unknown_set_message(ref, self.locations), loc=("rules", i, "sites", k)
                        )
                    )
        if problems:
            raise PolicyError(problems)
        return self

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


def unknown_set_message(name: str, known: dict[str, LocationSet]) -> str:
    have = ", ".join(sorted(known)) or "none"
    return (
        f"unknown location set {name!r} (defined: {have}); "
        "a site pattern needs a prefix such as aws: or jurisdiction:"
    )
