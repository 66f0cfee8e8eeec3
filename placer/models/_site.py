"""Sites: on-prem GPU pools and cloud regions with their offers, as an inventory declares them.

An inventory may name a cloud site by region only and inherit its offers, provisioning latency
and jurisdictions from the embedded catalog; any figure it states overrides the catalog's.
Resolution against the catalog happens in :mod:`placer.catalog`, not here: models do no I/O.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from placer.models._base import USD, Gbps, Hours, LocationKey, Model, Name, SizeGB, keyed_to_list
from placer.models._location import CountryCode, Location


class GpuPool(Model):
    """Identical GPUs on-prem, paid for whether used or not, priced per GPU-hour for planning."""

    gpu: str = Field(min_length=1, description="GPU type, e.g. A100-80GB")
    count: int = Field(ge=1, le=10_000_000, description="GPUs in the pool")
    cost_per_gpu_hour: USD = Field(description="internal (amortised) cost per GPU-hour")


class Offer(Model):
    """A cloud node type: ``gpus_per_node`` GPUs at ``on_demand`` (maybe ``spot``) $/node-hour."""

    gpu: str = Field(min_length=1)
    gpus_per_node: int = Field(ge=1, le=1024)
    on_demand: USD = Field(description="USD per node-hour, on-demand")
    spot: USD | None = Field(default=None, description="USD per node-hour, spot; none = no spot")
    instance_type: str | None = None
    source: str | None = Field(default=None, description="where the price comes from")


class Cluster(Model):
    """How to reach the compute at a site: which backend, where, and where its secret lives.

    Secrets are never written in the inventory: ``token_env`` names an environment variable
    and ``token_file`` a file that holds the token, so the inventory can be committed.
    """

    backend: str = Field(default="ray", description="entry point in placer.backends: ray, k8s")
    address: str | None = Field(
        default=None, description="e.g. http://10.0.0.5:8265 (Ray dashboard / Jobs API)"
    )
    token_env: str | None = Field(default=None, description="env var holding the auth token")
    token_file: str | None = Field(default=None, description="file holding the auth token")
    context: str | None = Field(default=None, description="kubeconfig context (k8s)")
    namespace: str | None = Field(default=None, description="Kubernetes namespace (k8s)")
    options: dict[str, str] = Field(default_factory=dict, description="backend-specific")


_ENDPOINT_RE = re.compile(r"^https?://[^/\s@]+(/\S*)?$", re.IGNORECASE)
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StoreCredentials(Model):
    """Where a site's store finds its credentials: references only, never the secrets.

    For S3 (AWS or an on-prem S3-compatible store): a named ``profile`` of the shared AWS
    config, or the names of the environment variables holding the key pair (and session
    token). For GCS: ``credentials_file``, a service-account key file. Unset: the SDK's own
    chain (boto3's, Application Default Credentials). A file:// store takes none: the file
    system's permissions apply. The values these name are masked in every message
    (:mod:`placer.secrets`).
    """

    profile: str | None = Field(default=None, min_length=1, description="AWS config profile")
    access_key_id_env: str | None = Field(default=None, description="env var: access key id")
    secret_access_key_env: str | None = Field(
        default=None, description="env var: secret access key")
    session_token_env: str | None = Field(default=None, description="env var: session token")
    credentials_file: str | None = Field(
        default=None, min_length=1, description="GCS: service-account JSON key file")

    @field_validator("access_key_id_env", "secret_access_key_env", "session_token_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME_RE.match(v):
            raise ValueError(f"{v!r} is not an environment variable name: name the variable "
                             "that holds the secret (e.g. MINIO_SECRET_KEY), never the secret")
        return v

    @model_validator(mode="after")
    def _pairs(self) -> StoreCredentials:
        if (self.access_key_id_env is None) != (self.secret_access_key_env is None):
            raise ValueError("access_key_id_env and secret_access_key_env come together")
        if self.session_token_env and not self.access_key_id_env:
            raise ValueError("session_token_env needs access_key_id_env and "
                             "secret_access_key_env")
        if self.profile and self.access_key_id_env:
            raise ValueError("give a profile or the key environment variables, not both")
        if self.credentials_file and (self.profile or self.access_key_id_env):
            raise ValueError("credentials_file is for GCS; profile and *_env are for S3")
        return self

    def env_names(self) -> tuple[str, ...]:
        """The environment variables whose values are secrets."""
        return tuple(v for v in (self.access_key_id_env, self.secret_access_key_env,
                                 self.session_token_env) if v)


class Site(Model):
    """A place placer may run jobs: an on-prem GPU cluster or a cloud region."""

    name: Name
    kind: Literal["onprem", "cloud"]
    location: LocationKey
    country: CountryCode | None = Field(
        default=None, description="ISO 3166-1 alpha-2; required for on-prem sites"
    )
    jurisdictions: frozenset[str] = Field(
        default=frozenset(), description="extra jurisdictions beyond those of the country"
    )
    pools: tuple[GpuPool, ...] = ()
    offers: tuple[Offer, ...] | None = Field(
        default=None, description="cloud offers; omit to inherit the catalog's for the region"
    )
    provisioning: Hours | None = Field(
        default=None, description="time from request to a ready node (cloud); catalog default"
    )
    spot_overhead: float | None = Field(
        default=None,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description=(
            "expected extra run time on spot from preemption and restart, as a fraction "
            "(0.1 = +10 %); set, it overrides the estimate from the region's measured spot "
            "traces (catalog spot_stats.csv), which is used when it is left out"
        ),
    )
    labels: dict[str, str] = Field(default_factory=dict)
    cluster: Cluster | None = Field(
        default=None, description="how to submit jobs here; planning does not need it"
    )
    storage: str | None = Field(
        default=None,
        description="where jobs here write outputs, e.g. s3://acme-eu/placer (in this location)",
    )
    storage_endpoint: str | None = Field(
        default=None,
        description=(
            "on-prem sites: the URL of the site's own S3-compatible store (MinIO, Ceph) that "
            "holds `storage`; its buckets are where the site is. Required for an on-prem site "
            "with `storage`: a bucket on a cloud store is where that store says, never where "
            "the inventory says"
        ),
    )
    storage_credentials: StoreCredentials | None = Field(
        default=None, description="where the store of `storage` finds its credentials "
        "(references, never secrets); unset: the SDK's own chain")
    dataset_buckets: tuple[str, ...] = Field(
        default=(), description="other buckets of this site's store that datasets are read "
        "from (on-prem: where the site is); a dataset URI in one is routed to this store")

    @field_validator("storage")
    @classmethod
    def _file_storage(cls, v: str | None, info: ValidationInfo) -> str | None:
        # A file:// store's problems are the field's own (the rest of the rule needs the
        # endpoint too: checked on the whole site).
        if v is not None and v.startswith("file:"):
            problem = storage_rule_problem(info.data.get("kind", "cloud"), v, None)
            if problem:
                raise ValueError(problem)
        return v

    @field_validator("storage_endpoint")
    @classmethod
    def _endpoint_url(cls, v: str | None) -> str | None:
        if v is not None and not _ENDPOINT_RE.match(v):
            raise ValueError(
                f"storage_endpoint {v!r} must be an http:// or https:// URL such as "
                "http://minio.fra-dc1:9000, without user:password@ (secrets never go in the "
                "inventory)")
        return v

    @model_validator(mode="before")
    @classmethod
    def _infer_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and "kind" not in data and isinstance(data.get("location"), str):
            data = {**data, "kind": "onprem" if data["location"].startswith("onprem:") else "cloud"}
        return data

    @model_validator(mode="after")
    def _check(self) -> Site:
        onprem_loc = self.location.startswith("onprem:")
        if self.kind == "onprem":
            if not onprem_loc:
                raise ValueError(f"an on-prem site needs an onprem: location, got {self.location}")
            if self.country is None:
                raise ValueError("an on-prem site needs its country (ISO-2), e.g. country: DE")
            if not self.pools:
                raise ValueError("an on-prem site needs at least one GPU pool")
            if self.offers is not None:
                raise ValueError("an on-prem site has pools, not offers")
        else:
            if onprem_loc:
                raise ValueError("a cloud site needs a cloud location such as aws:eu-central-1")
            if self.pools:
                raise ValueError("a cloud site has offers, not pools")
        problem = storage_rule_problem(self.kind, self.storage, self.storage_endpoint)
        if problem:
            raise ValueError(problem)
        scheme = (self.storage or "").partition("://")[0]
        if self.dataset_buckets and scheme not in ("s3", "gs"):
            raise ValueError("dataset_buckets name other buckets of the site's s3:// or gs:// "
                             "store: set storage to a bucket on that store first")
        if self.storage_credentials is not None:
            if scheme not in ("s3", "gs"):
                raise ValueError("storage_credentials are for an s3:// or gs:// storage (a "
                                 "file:// store uses the file system's permissions)")
            c = self.storage_credentials
            if scheme == "gs" and (c.profile or c.access_key_id_env):
                raise ValueError("a gs:// store takes credentials_file, not profile or *_env")
            if scheme == "s3" and c.credentials_file:
                raise ValueError("an s3:// store takes profile or *_env, not credentials_file")
        return self


def storage_rule_problem(kind: str, storage: str | None, endpoint: str | None) -> str | None:
    """What is wrong with a site's ``storage`` / ``storage_endpoint`` under the bucket rule.

    A bucket's location is what its store says. A cloud store (AWS S3, GCS) always answers
    for its buckets, so the inventory can say nothing about them; an on-prem site's storage
    must therefore be on the site's own S3-compatible store (``storage_endpoint``), whose
    buckets are where the site is. See docs/storage.md, "Where a bucket is".

    >>> storage_rule_problem("onprem", "s3://fra-store/placer", "http://minio.fra:9000")
    >>> storage_rule_problem("cloud", "s3://acme-eu/placer", None)
    >>> storage_rule_problem("onprem", "file:///mnt/nfs/placer", None)
    """
    if storage and storage.startswith("file:"):
        if kind != "onprem":
            return (f"storage {storage!r}: a file:// store is an on-prem site's shared file "
                    "system, whose location is the site's; a cloud region's storage is its "
                    "provider's object store")
        if endpoint is not None:
            return "storage_endpoint is for an S3-compatible store, not a file:// one"
        if not storage.startswith("file:///") or "/../" in storage + "/":
            return (f"storage {storage!r} must be file:// and an absolute path without '..', "
                    "e.g. file:///mnt/nfs/placer")
        return None
    if endpoint is not None:
        if kind != "onprem":
            return ("storage_endpoint is for on-prem sites: a cloud region's buckets are on "
                    "the provider's store, which says where they are; remove it")
        if not storage:
            return "storage_endpoint is set but storage is not: name the bucket, e.g. " \
                   "storage: s3://fra-store/placer"
        if not storage.startswith("s3://"):
            return (f"storage {storage!r} must be an s3:// URI: an on-prem store at "
                    "storage_endpoint is S3-compatible")
    elif kind == "onprem" and storage:
        return (f"storage {storage!r} has no storage_endpoint, so it would be a bucket on a "
                "cloud store; a cloud store says where its buckets are, and that is never this "
                "on-prem site. Put the site's outputs on its own S3-compatible store and give "
                "its URL as storage_endpoint (e.g. http://minio.fra-dc1:9000)")
    return None


class EgressTier(Model):
    """From ``from`` GB of one transfer on, each further GB costs ``usd_per_gb``."""

    from_gb: SizeGB = Field(alias="from", gt=0)
    usd_per_gb: USD = Field(ge=0)


class Link(Model):
    """Transfer price and bandwidth between two locations, overriding the catalog's figures.

    ``from``/``to`` are location patterns (``onprem:*``, ``aws:eu-*``); the most specific matching
    link wins, and a link applies both ways unless ``symmetric`` is false. A link matching in its
    written direction beats an equally specific one that reaches the pair only by the default
    symmetry; :func:`placer.catalog.link_for` gives the full order.

    Whether ``symmetric`` was written matters (``symmetric: true`` written out states the
    reverse direction as deliberately as the forward one), so it is kept through a dump and
    reload: an unwritten ``symmetric`` is left out of the serialised form.
    """

    from_: str = Field(alias="from", min_length=1)
    to: str = Field(min_length=1)
    usd_per_gb: USD | None = None
    bandwidth: Gbps | None = Field(default=None, gt=0)
    free: SizeGB | None = Field(
        default=None, ge=0,
        description="the first GB of each transfer cost nothing (AWS and Azure: 1GB)")
    tiers: tuple[EgressTier, ...] | None = Field(
        default=None, description="cheaper prices from a volume on, per transfer: "
        "[{from: 10TB, usd_per_gb: 0.085}, ...]")
    symmetric: bool = True

    @model_validator(mode="after")
    def _tiers_ascend(self) -> Link:
        last = self.free or 0.0
        for i, t in enumerate(self.tiers or ()):
            if not t.from_gb > last:
                raise ValueError(f"tiers[{i}] starts at {t.from_gb:g} GB, not above "
                                 f"{last:g} GB: tiers start above `free` in increasing order")
            last = t.from_gb
        return self

    @property
    def symmetric_written(self) -> bool:
        """Whether ``symmetric`` was stated in the input rather than defaulted."""
        return "symmetric" in self.model_fields_set

    @model_serializer(mode="wrap")
    def _keep_unwritten_symmetric_unwritten(
        self, handler: SerializerFunctionWrapHandler
    ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.symmetric_written:
            data.pop("symmetric", None)
        return data


class Inventory(Model):
    """The sites a user may run on, and what is known about the network between them."""

    name: str = "inventory"
    sites: tuple[Site, ...] = Field(min_length=1)
    network: tuple[Link, ...] = ()

    @field_validator("sites", mode="before")
    @classmethod
    def _sites_by_name(cls, v: Any) -> Any:
        return keyed_to_list(v, "site")

    @model_validator(mode="after")
    def _unique(self) -> Inventory:
        seen: set[str] = set()
        for site in self.sites:
            if site.name in seen:
                raise ValueError(f"duplicate site name {site.name!r}")
            seen.add(site.name)
        return self

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)


class ResolvedSite(Model):
    """A site with every figure known: its full Location, offers and latencies.

    Built by :func:`placer.catalog.resolve_inventory` from an inventory entry and the catalog;
    this is what the policy evaluator and the optimizer see.
    """

    name: str
    kind: Literal["onprem", "cloud"]
    location: Location
    pools: tuple[GpuPool, ...] = ()
    offers: tuple[Offer, ...] = ()
    provisioning_h: float = 0.0
    spot_provisioning_h: float = 0.0
    spot_overhead: float | None = None
    """The site's explicit figure; None: priced from the region's spot statistics."""
    labels: dict[str, str] = Field(default_factory=dict)
    cluster: Cluster | None = None
    storage: str | None = None
    storage_endpoint: str | None = Field(
        default=None, description="on-prem: the site's own S3-compatible store (see Site)"
    )
    storage_credentials: StoreCredentials | None = None
    dataset_buckets: tuple[str, ...] = ()
