"""Preflight: what a run needs from the world, checked in seconds before anything is recorded.

``placer submit`` runs it after planning and before the journal, the decision log or any
cluster hears of the run; ``placer preflight --inventory inv.yaml`` runs it alone. For each
site concerned:

* **tokens present and accepted, clusters reachable**: the site's compute backend, if it offers
  ``preflight(timeout_s)`` (Ray: one authenticated request to the Jobs API, no retry);
* **stores writable**: a small probe object written under the site's ``storage`` root, through
  the same residency guard as every write (the root must be where the site is), then verified;
* **images pinned**: every job image (and a site's ``cluster.options.image``) names a digest
  (``…@sha256:…``), so what runs is what was planned and reviewed.

Each problem is one line, naming the site (or job) and saying what to do. Nothing is retried:
a preflight is a question, not an attempt; the executor's retries are for runs under way.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from placer.errors import CredentialsError, PlacerError
from placer.models import Pipeline, ResolvedSite

__all__ = ["Problem", "check_images", "check_sites", "preflight"]

DEFAULT_TIMEOUT_S = 3.0
# A store is given longer than a cluster: a write is a few round trips, not one.
STORE_TIMEOUT_S = 10.0
PROBE_DIR = ".placer-preflight"


@dataclass(frozen=True)
class Problem:
    """One thing that would stop the run, and how to fix it (``message`` is one line)."""

    check: str          # "credentials", "cluster", "store", "image", "backend"
    subject: str        # the site or job concerned
    message: str

    def __str__(self) -> str:
        return self.message


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _within(fn: Callable[[], None], timeout_s: float, what: str) -> None:
    """Run ``fn`` in a daemon thread; a :class:`PlacerError` if it has not ended in time (an
    SDK with its own retries must not hold a preflight for minutes; the thread is left to
    finish on its own)."""
    box: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # reported to the caller
            box.append(exc)

    t = threading.Thread(target=run, daemon=True, name="placer-preflight")
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise PlacerError(f"{what} did not answer in {timeout_s:g}s")
    if box:
        raise box[0]


def _cluster(site: ResolvedSite, timeout_s: float) -> Problem | None:
    from placer.backends import load_backend

    assert site.cluster is not None
    try:
        factory = load_backend(site.cluster.backend)
        if getattr(factory, "preflight", None) is None:
            return None  # a backend with no cheap check: it answers at the first submit
        check = factory(site).preflight
        _within(lambda: check(timeout_s=timeout_s), timeout_s + 2.0,
                f"{site.name}: the {site.cluster.backend} cluster")
    except PlacerError as exc:
        msg = _one_line(str(exc))
        if not msg.startswith(f"{site.name}:"):
            msg = f"{site.name}: {msg}"
        return Problem("credentials" if isinstance(exc, CredentialsError) else "cluster",
                       site.name, msg)
    return None


def credentials_problems(sites: Iterable[ResolvedSite], *,
                         timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Problem]:
    """Only the clusters whose credentials are missing or refused (``placer resume``): a
    cluster that does not answer is left to failover, which is what resuming is for, but a
    token nobody set would be retried for minutes without saying so."""
    return [p for site in sites if site.cluster is not None
            and (p := _cluster(site, timeout_s)) is not None and p.check == "credentials"]


def _store(site: ResolvedSite, router: Any, timeout_s: float) -> Problem | None:
    assert site.storage is not None
    uri = f"{site.storage.rstrip('/')}/{PROBE_DIR}/{secrets.token_hex(6)}.json"
    try:
        store = router.store_for(uri)
        _within(lambda: store.put_json(uri, {"preflight": time.time()},
                                       allowed={site.location.key}),
                timeout_s, f"{site.name}: store {site.storage}")
    except PlacerError as exc:
        return Problem("store", site.name,
                       f"{site.name}: storage {site.storage} is not writable "
                       f"({_one_line(str(exc))}): create it, grant write access, or fix the "
                       "site's storage / storage_endpoint")
    return None


def check_sites(sites: Iterable[ResolvedSite], *, timeout_s: float = DEFAULT_TIMEOUT_S,
                store_timeout_s: float = STORE_TIMEOUT_S) -> list[Problem]:
    """Clusters (token, reachable) and stores (writable) of ``sites``, in site order."""
    sites = list(sites)
    problems: list[Problem] = []
    for site in sites:
        if site.cluster is not None and (p := _cluster(site, timeout_s)) is not None:
            problems.append(p)
    with_storage = [s for s in sites if s.storage]
    if with_storage:
        from placer.backends import storage_for

        try:
            router = storage_for(with_storage)
        except PlacerError as exc:
            return [*problems, Problem("store", "inventory", _one_line(str(exc)))]
        for site in with_storage:
            if (p := _store(site, router, store_timeout_s)) is not None:
                problems.append(p)
    return problems


def check_images(pipeline: Pipeline | None, sites: Iterable[ResolvedSite] = (),
                 jobs: Collection[str] | None = None) -> list[Problem]:
    """Images not pinned by digest: a tag can be moved, so the run could differ from the
    plan. ``jobs``: only these (default: every job of ``pipeline``)."""
    problems: list[Problem] = []
    for job in pipeline.jobs if pipeline is not None else ():
        if jobs is not None and job.name not in jobs:
            continue
        if job.image and "@sha256:" not in job.image:
            problems.append(Problem("image", job.name, f"job {job.name}: image {job.image} is "
                                    "not pinned: name it by digest (image@sha256:…; `docker "
                                    "buildx imagetools inspect` prints it)"))
    for site in sites:
        image = site.cluster.options.get("image") if site.cluster else None
        if image and "@sha256:" not in image:
            problems.append(Problem("image", site.name, f"{site.name}: cluster.options.image "
                                    f"{image} is not pinned: name it by digest (@sha256:…)"))
    return problems


def preflight(sites: Iterable[ResolvedSite], pipeline: Pipeline | None = None, *,
              only: Collection[str] | None = None, jobs: Collection[str] | None = None,
              timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Problem]:
    """Every check for the ``sites`` named in ``only`` (default all) and the pipeline's
    ``jobs`` (default all); an empty list when the run may go."""
    from placer.secrets import Redactor, secret_values

    chosen = [s for s in sites if only is None or s.name in only]
    found = [*check_images(pipeline, chosen, jobs), *check_sites(chosen, timeout_s=timeout_s)]
    # What a cluster or store answered may echo a token: masked, as everything shown is.
    mask = Redactor(secret_values(chosen))
    return [Problem(p.check, p.subject, mask.text(p.message)) for p in found]
