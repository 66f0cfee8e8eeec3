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
    class:baa-covered   a site of that class: its inventory entry lists the class in its
                        ``class`` label (``labels: {class: "self-hosted, baa-covered"}``)

A ``sites`` entry without a colon names a location set.
"""

from __future__ import annotations

import re
from datetime import date
from fnmatch import fnmatchcase
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from placer.errors import ErrorDetail, PolicyError
from placer.models import NAME_RE, PROVIDERS, USD, Model, Name, ResolvedSite, check_country
from placer.tags import clean, strict

Effect = Literal["forbid", "require", "allow", "limit", "prefer"]
EFFECTS: tuple[str, ...] = ("forbid", "require", "allow", "limit", "prefer")
"""Effects in the order they are applied: hard before soft."""
Mode = Literal["enforce", "audit", "warn"]
Layer = Literal["organisation", "team"]

API_VERSION = "placer/v1"
PATTERN_PREFIXES: tuple[str, ...] = (
    *PROVIDERS, "jurisdiction", "country", "site", "provider", "class")
CLASS_LABEL = "class"
"""The site label that lists a site's classes, comma-separated: ``class: self-hosted``."""

_REGION_GLOB_RE = re.compile(r"^[a-z0-9._*?\[\]!-]+$")
_SITE_GLOB_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]+$")
_JURISDICTION_RE = re.compile(r"^[A-Z][A-Z0-9_-]*$")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_CLASS_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
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
            "jurisdiction:EU, country:DE, site:<name glob>, provider:gcp or class:<site class>"
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
    elif prefix == "class":
        if not _CLASS_RE.match(rest):
            raise ValueError(
                f"bad site class {rest!r} in {text!r}: a class is a lowercase name such as "
                "self-hosted or baa-covered (no wildcards)"
            )
    elif not any(fnmatchcase(p, rest) for p in PROVIDERS):
        raise ValueError(
            f"unknown provider {rest!r} in {text!r}; expected one of {', '.join(PROVIDERS)} "
            "(or a glob such as *)"
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


def site_classes(site: ResolvedSite) -> frozenset[str]:
    """The classes a site's inventory entry gives it: its ``class`` label, comma-separated.

    Compared case-insensitively (``Self-Hosted`` is ``self-hosted``), never by look-alike.

    >>> from placer.models import Location
    >>> fra = Location(provider="onprem", region="fra", country="DE")
    >>> sorted(site_classes(ResolvedSite(name="fra", kind="onprem", location=fra,
    ...                                  labels={"class": "self-hosted, BAA-covered"})))
    ['baa-covered', 'self-hosted']
    """
    text = next((v for k, v in site.labels.items() if strict(k) == CLASS_LABEL), "")
    return frozenset(c for c in (strict(part) for part in text.split(",")) if c)


def pattern_matches(pattern: str, site: ResolvedSite) -> bool:
    """Whether a (checked) site pattern matches a site."""
    prefix, _, rest = pattern.partition(":")
    loc = site.location
    if prefix == "class":
        return rest in site_classes(site)
    if prefix == "jurisdiction":
        return rest in loc.jurisdictions
    if prefix == "country":
        return loc.country == rest
    if prefix == "site":
        return fnmatchcase(site.name, rest)
    if prefix == "provider":
        return fnmatchcase(loc.provider, rest)
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
Globs = Annotated[tuple[Annotated[str, Field(min_length=1)], ...], BeforeValidator(_as_tuple)]
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
    jobs: Globs = ()
    images: Globs = Field(default=(), description="globs over the job's container image")
    commands: Globs = Field(default=(), description="globs over the job's command")


class Budget(Model):
    """Spend allowed per period, for all matching jobs together or per value of a job label."""

    usd: USD = Field(gt=0)
    period: Literal["day", "week", "month"]
    per_label: TagKey | None = Field(
        default=None, description="one budget per value of this job label (team: nlp, …)"
    )


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
    mode: Mode = Field(
        default="enforce",
        description="enforce: decides; audit: records what it would decide, never blocks; "
        "warn: like audit, and the CLI prints a warning",
    )
    waivable: bool = Field(default=True, description="false: no exception may waive this rule")
    max_usd_per_job: USD | None = Field(
        default=None, description="limit only: a job may not cost more on these sites"
    )
    max_usd_per_hour: USD | None = Field(
        default=None, description="limit only: a job may not cost more per hour on these sites"
    )
    budget: Budget | None = Field(
        default=None, description="limit only: spend per period on these sites"
    )
    on_excess: Literal["deny", "hold"] = Field(
        default="deny",
        description="limit only: deny (the site is not eligible) or hold (the job waits)",
    )

    @model_validator(mode="before")
    @classmethod
    def _limit_sites_default(cls, data: Any) -> Any:
        # A limit without sites caps spend everywhere.
        if isinstance(data, dict) and data.get("effect") == "limit" and "sites" not in data:
            return {**data, "sites": ["provider:*"]}
        return data

    @model_validator(mode="after")
    def _fields_fit_effect(self) -> Rule:
        limits = ("max_usd_per_job", "max_usd_per_hour", "budget")
        given = [f for f in limits if getattr(self, f) is not None]
        if self.effect == "limit" and not given:
            raise PolicyError(ErrorDetail(
                "a limit rule needs max_usd_per_job, max_usd_per_hour or budget",
                loc=("effect",)))
        if self.effect != "limit":
            for f in [*given, *(["on_excess"] if self.on_excess != "deny" else [])]:
                raise PolicyError(ErrorDetail(
                    f"{f} applies to limit rules only, not to a {self.effect} rule", loc=(f,)))
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


class Defaults(Model):
    """What a job gets where no rule decides.

    ``decision: allow`` (the default): a site no rule rejects is eligible. ``decision: deny``:
    a site is eligible only where a matching ``allow`` names it (and no forbid or require
    rejects it). Unknown facts are never allowed: ``unknown_location`` can only be ``hold``.
    """

    decision: Literal["allow", "deny"] = "allow"
    unknown_location: Literal["hold"] = "hold"


class TagSource(Model):
    """Which datasets a tagging rule tags: every key given must match.

    ``uri`` globs over the dataset's URI (``*`` stays within a path segment, ``**`` crosses
    them); ``storage_tags`` matches the tags or labels the store reports; ``locations`` holds
    when EVERY copy of the dataset is at a location matching one of the patterns (a dataset is
    only as resident as its most distant copy).
    """

    uri: Globs = ()
    storage_tags: dict[TagKey, MatchValues] = Field(default_factory=dict)
    locations: Annotated[tuple[SitePattern, ...], BeforeValidator(_as_tuple)] = ()

    @model_validator(mode="after")
    def _something(self) -> TagSource:
        if not (self.uri or self.storage_tags or self.locations):
            raise ValueError("a tagging rule matches by uri, storage_tags or locations")
        return self


class TaggingRule(Model):
    """Derive tags for the datasets ``match`` selects: ``s3://clinical-*/**`` → ``class: phi``.

    Derived tags are added to the tags a pipeline writes (per key, the values are united): a
    pipeline can add a tag, never weaken a derived one.
    """

    id: Name
    match: TagSource
    tags: dict[TagKey, TagValue] = Field(min_length=1)
    message: str = ""


class TransformMatch(Model):
    """Which jobs are an approved transform: by image and/or command (globs), optionally name.

    Matched strictly (case-sensitive globs): an approval widens what data may do.
    """

    images: Globs = ()
    commands: Globs = ()
    jobs: Globs = ()

    @model_validator(mode="after")
    def _pinned(self) -> TransformMatch:
        if not (self.images or self.commands):
            raise ValueError("an approved transform names the images or commands it approves "
                             "(a job name alone is not an approval)")
        return self


class Transform(Model):
    """A job this policy trusts to remove tags, e.g. a de-identifier removing ``class: pii``.

    A job's own ``removes_tags`` counts only where a transform matches the job and lists the
    tag; the decision records which transform allowed it.
    """

    id: Name
    match: TransformMatch
    removes: dict[TagKey, MatchValues] = Field(min_length=1)
    message: str = Field(min_length=1)


class Waiver(Model):
    """An exception: rules ``waives`` do not apply to matching jobs until ``expires``.

    Matched strictly (case, width and spaces folded; look-alike letters not): a waiver widens.
    An expired exception is ignored everywhere; a rule marked ``waivable: false`` cannot be
    waived; a team's exception can waive only team rules.
    """

    id: Name
    waives: Annotated[tuple[Name, ...], BeforeValidator(_as_tuple), AfterValidator(_non_empty)]
    match: Match
    sites: Annotated[tuple[SiteRef, ...], BeforeValidator(_as_tuple)] = Field(
        default=(), description="only on these sites; all the rule's sites when empty"
    )
    expires: date
    ticket: str = Field(min_length=1)
    approved_by: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class TestSite(Model):
    """A site in a policy test: where it is, and its labels; nothing about GPUs.

    A cloud site takes its country and jurisdictions from the catalog (``country``, if given,
    must agree); an on-prem site needs ``country``. Classes come from the ``class`` label, as in
    an inventory: ``labels: {class: self-hosted}``.
    """

    location: str = Field(pattern=r"^(onprem|aws|gcp|azure):[a-z0-9][a-z0-9._-]*$")
    country: str | None = None
    jurisdictions: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)


class TestExpectation(Model):
    """What a test expects of one job: any field left out is not checked."""

    decision: Literal["eligible", "held", "no-site"] | None = None
    allowed: tuple[str, ...] | None = None
    rejected: dict[str, tuple[str, ...]] | None = Field(
        default=None, description="site → the rule ids that reject it"
    )
    audit: dict[str, tuple[str, ...]] | None = None
    waived: dict[str, tuple[str, ...]] | None = None
    removed: tuple[str, ...] | None = Field(default=None, description="key=value removed")
    limits: dict[str, tuple[str, ...]] | None = Field(
        default=None, description="allowed site → the limit rules that cap the job's cost there"
    )
    penalties: dict[str, USD] | None = Field(
        default=None, description="allowed site → USD the prefer rules add there"
    )


class PolicyTest(Model):
    """One inline test: datasets, jobs and sites given, a decision per job expected."""

    name: str = Field(min_length=1)
    datasets: dict[Name, dict[str, Any]] = Field(default_factory=dict)
    jobs: dict[Name, dict[str, Any]] = Field(min_length=1)
    sites: dict[Name, TestSite] = Field(min_length=1)
    now: date | None = Field(default=None, description="the day exceptions are judged on")
    expect: dict[Name, TestExpectation] = Field(min_length=1)


class SourcedTest(Model):
    """An inline test and where it is written."""

    file: str
    line: int | None = None
    policy: str
    test: PolicyTest


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
    layer: Layer = Field(
        default="organisation",
        description="team sets can only narrow what the organisation's sets allow",
    )
    defaults: Defaults = Field(default_factory=lambda: Defaults())
    tagging: tuple[TaggingRule, ...] = Field(
        default=(), description="rules that derive dataset tags from where and what data is"
    )
    transforms: tuple[Transform, ...] = Field(
        default=(), description="approved jobs that may remove tags (de-identifiers)"
    )
    exceptions: tuple[Waiver, ...] = Field(
        default=(), description="named rules waived for matching jobs, until they expire"
    )
    tests: tuple[PolicyTest, ...] = Field(
        default=(), description="cases `placer policy test` checks; not part of the policy"
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
    defaults: dict[Layer, Defaults] = Field(
        default_factory=dict, description="per layer; a layer not listed has the defaults"
    )
    layers: dict[str, Layer] = Field(
        default_factory=dict,
        description="rule or exception id → the layer of the file defining it (absent: "
        "organisation)",
    )
    required_by_layer: dict[Layer, tuple[TagKey, ...]] = Field(
        default_factory=dict,
        description="the required tags of each layer's files (empty: all the organisation's)",
    )
    tagging: tuple[TaggingRule, ...] = ()
    transforms: tuple[Transform, ...] = ()
    exceptions: tuple[Waiver, ...] = ()
    tests: tuple[SourcedTest, ...] = Field(
        default=(), description="the files' inline tests (evidence, not policy)"
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

    def layer(self, item_id: str) -> Layer:
        return self.layers.get(item_id, "organisation")

    def required_tags_of(self, layer: Layer) -> tuple[str, ...]:
        """The tags a layer requires: checked against the data that layer knows."""
        if self.required_by_layer:
            return self.required_by_layer.get(layer, ())
        return self.required_tags if layer == "organisation" else ()

    def defaults_of(self, layer: Layer) -> Defaults:
        return self.defaults.get(layer) or Defaults()

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
