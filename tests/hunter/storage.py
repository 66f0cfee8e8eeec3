"""The hunter on real S3 (``moto_server``): storage facts from the store, bytes in buckets.

``hunt_storage(case, workdir, servers)``:

1. creates the case's buckets: data buckets in their regions with their (spelt) tags and a data
   object, and each site's output bucket; a bucket on an ``onprem<k>`` server stands for an
   on-prem site's own store (MinIO), the ``cloud`` server for AWS;
2. loads the inventory and builds placer's own storage wiring from it
   (``placer.backends.storage_for`` / ``layout_for``), asks it for every dataset's facts
   (location and tags, as ``S3Resolver`` reads them) and writes the pipeline from those facts;
3. plans and runs with fake compute backends whose jobs write their outputs into S3 where the
   manifest says, and placer's S3 store doing the copies and checking output prefixes;
4. lists every object of every bucket on every server: each one's bucket must truly lie (as
   the generator created it) where the oracle allows the data it holds, derived from the key
   layout ``placer/{run}/{job}/…``; data buckets must hold nothing new.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.hunter.harness import (
    LOAD_TIME_LIMIT_S,
    Outcome,
    Place,
    World,
    _unexpected,
    cluster_faults,
    decision_day,
    drive,
    dump_yaml,
    load_and_plan,
    place_in_layout,
    time_limit,
    write_policies,
    writing_backend,
)
from tests.hunter.oracle import judge
from tests.hunter.strategies import ONPREM_STORES, onprem_endpoint

_run = itertools.count()


@dataclass
class Servers:
    """``moto_server``s: the cloud store (AWS) and each on-prem site's own store."""

    urls: Mapping[str, str]  # "cloud", "onprem0", "onprem1" → endpoint URL
    clients: Mapping[str, Any]  # the same keys → an admin boto3 client


@contextmanager
def servers_running() -> Iterator[Servers]:
    """Start the cloud store and the on-prem stores; point boto3's environment (which
    placer's cloud store is built from, as in production) at the cloud one meanwhile."""
    import boto3

    from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY, moto_server

    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1"}
    hidden = ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
    with ExitStack() as stack:
        urls = {name: stack.enter_context(moto_server())
                for name in ("cloud", *(f"onprem{k}" for k in range(ONPREM_STORES)))}
        env |= {"AWS_ENDPOINT_URL_S3": urls["cloud"], "AWS_ENDPOINT_URL": urls["cloud"]}
        saved = {k: os.environ.get(k) for k in (*env, *hidden)}
        os.environ.update(env)
        for k in hidden:
            os.environ.pop(k, None)
        try:
            clients = {name: boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                                          aws_access_key_id=ACCESS_KEY,
                                          aws_secret_access_key=SECRET_KEY)
                       for name, url in urls.items()}
            yield Servers(urls, clients)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _real_names(case: Mapping[str, Any]) -> dict[str, str]:
    prefix = f"h{next(_run)}x"
    return {b: f"{prefix}-{b}" for b in case["storage"]["buckets"]}


def _rename(doc: Any, names: Mapping[str, str], servers: Servers) -> Any:
    text = json.dumps(doc, ensure_ascii=False)
    for logical, real in names.items():
        text = text.replace(f"s3://{logical}/", f"s3://{real}/")
    for k in range(ONPREM_STORES):
        text = text.replace(onprem_endpoint(k), servers.urls[f"onprem{k}"])
    return json.loads(text)


def create_buckets(case: Mapping[str, Any], names: Mapping[str, str], servers: Servers) -> None:
    for logical, spec in case["storage"]["buckets"].items():
        client = servers.clients[spec["server"]]
        bucket = names[logical]
        region = spec.get("region")
        if region and region != "us-east-1":
            client.create_bucket(Bucket=bucket,
                                 CreateBucketConfiguration={"LocationConstraint": region})
        else:
            client.create_bucket(Bucket=bucket)
        if spec.get("tags"):
            client.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
                {"Key": k, "Value": v} for k, v in spec["tags"].items()]})
        for key in spec.get("objects", ()):
            client.put_object(Bucket=bucket, Key=key, Body=b"raw data of " + bucket.encode())


class S3Writer:
    """What a job does with its outputs: writes them to whichever store holds the bucket."""

    def __init__(self, case: Mapping[str, Any], names: Mapping[str, str],
                 servers: Servers) -> None:
        self.server = {names[b]: spec["server"] for b, spec in case["storage"]["buckets"].items()}
        self.servers = servers

    def put(self, uri: str, data: bytes) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        client = self.servers.clients[self.server.get(bucket, "cloud")]
        client.put_object(Bucket=bucket, Key=key, Body=data)


def world_of(case: Mapping[str, Any], names: Mapping[str, str], servers: Servers,
             inventory: Any, router: Any) -> World:
    from placer.backends import layout_for
    from placer.catalog import default_catalog, resolve_inventory

    sites = resolve_inventory(inventory, default_catalog())
    writer = S3Writer(case, names, servers)
    buckets = case["storage"]["buckets"]
    truth = {names[b]: spec["truth"] for b, spec in buckets.items()}
    initial = {(names[b], k) for b, spec in buckets.items() for k in spec.get("objects", ())}
    jobs = case["truth"]["jobs"]

    def stored() -> list[str]:
        out = []
        for b, spec in buckets.items():
            client = servers.clients[spec["server"]]
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=names[b])
            out += [f"s3://{names[b]}/{o['Key']}" for page in pages
                    for o in page.get("Contents", ()) if (names[b], o["Key"]) not in initial]
        return out

    def locate(uri: str) -> Place | None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if bucket not in truth or not key.startswith("placer/"):
            return None
        return place_in_layout(truth[bucket], key[len("placer/"):], jobs)

    f = case.get("faults") or {}
    return World(
        backends={s.name: writing_backend(s.name, writer, **cluster_faults(f)) for s in sites},
        layout=layout_for(sites), storage=router, mover=router, stored=stored, locate=locate)


def hunt_storage(case: Mapping[str, Any], workdir: Path, servers: Servers) -> Outcome:
    from placer.backends import storage_for
    from placer.catalog import default_catalog, load_inventory, resolve_inventory
    from placer.errors import PlacerError

    verdict = judge(case["truth"])
    day = decision_day(case)
    names = _real_names(case)
    create_buckets(case, names, servers)
    workdir.mkdir(parents=True, exist_ok=True)
    inventory_doc = _rename(case["inventory"], names, servers)
    template = _rename(case["pipeline"], names, servers)
    (workdir / "inventory.yaml").write_text(dump_yaml(inventory_doc), encoding="utf-8")
    policies = workdir / "policies"
    write_policies(case["policies"], policies, day)
    try:
        with time_limit(LOAD_TIME_LIMIT_S):
            inventory = load_inventory(workdir / "inventory.yaml")
            router = storage_for(resolve_inventory(inventory, default_catalog()))
            if router is None:
                return Outcome("not-placed", "no site has storage")
            for spec in template["datasets"].values():
                facts = router.resolve(spec["uri"])
                if facts.location is not None:
                    spec["location"] = facts.location
                if facts.tags:
                    spec["tags"] = dict(facts.tags)
            (workdir / "pipeline.yaml").write_text(dump_yaml(template), encoding="utf-8")
            loaded = load_and_plan({"pipeline": workdir / "pipeline.yaml",
                                    "inventory": workdir / "inventory.yaml",
                                    "policies": policies}, day=day)
    except PlacerError as exc:
        return Outcome("refused", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    except Exception as exc:
        return Outcome("crashed", "while loading, resolving or planning",
                       unexpected=_unexpected(exc), why=dict(verdict.why))
    if verdict.refuse:
        return Outcome("accepted", "policies placer must refuse were accepted",
                       violations=[f"accepted: {r}" for r in verdict.refuse])
    plan = loaded[3]
    if plan.status != "placed":
        return Outcome("not-placed", plan.status)
    outcome = Outcome("ran", "")
    outcome.notes.append(f"initial plan: { {j: p.site for j, p in plan.jobs.items()} }")
    buckets = case["storage"]["buckets"]
    outcome.notes.append(f"buckets: { {names[b]: s['truth'] for b, s in buckets.items()} }")
    drive(case, loaded, world_of(case, names, servers, loaded[1], router), workdir, outcome,
          verdict)
    if outcome.counterexample:
        outcome.why = dict(verdict.why)
    return outcome
