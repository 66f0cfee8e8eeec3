"""Preflight (issue 14, problem 2): tokens present and accepted, clusters reachable, stores
writable, images pinned; one line per problem with its fix, exit 2, before anything is recorded.

Against a real local Ray head with token auth (started by the product's ``placer.local``) and a
real S3 server (moto) playing an on-prem store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from placer import local
from placer.catalog import default_catalog, resolve_inventory
from placer.cli import app
from placer.journal import Journal
from placer.models import Inventory
from placer.preflight import check_images, preflight
from tests.builders import job, pipeline

ROOT = Path(__file__).resolve().parents[1]
LOCAL_PIPELINE = ROOT / "examples" / "quickstart" / "local-pipeline.yaml"
# A bound, not a benchmark: the old behaviour retried for 120 s; a preflight asks once.
SECONDS = 20.0
runner = CliRunner()


@pytest.fixture
def world(local_world: local.World) -> local.World:
    """The session's local world (tests/conftest.py: the product's ``placer local up``)."""
    return local_world


def _inventory(tmp: Path, world: local.World, **cluster: Any) -> Path:
    data = yaml.safe_load(world.inventory.read_text())
    site = data["sites"][local.SITE]
    site["cluster"] = {"backend": "ray", "address": world.head.address, **cluster}
    path = tmp / "inv.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _submit(inv: Path, tmp: Path) -> tuple[Any, float]:
    t0 = time.monotonic()
    res = runner.invoke(app, ["submit", str(LOCAL_PIPELINE), "--inventory", str(inv),
                              "--journal", str(tmp / "j.db"), "--wait"])
    return res, time.monotonic() - t0


def _lines(res: Any) -> list[str]:
    return [ln for ln in res.output.splitlines() if ln.startswith("preflight: ")]


def test_the_local_world_passes(world: local.World, tmp_path: Path) -> None:
    res = runner.invoke(app, ["preflight", "--inventory", str(world.inventory),
                              "--pipeline", str(LOCAL_PIPELINE)])
    assert res.exit_code == 0, res.output
    assert "preflight: ok" in res.output


def test_a_missing_token_variable_fails_at_once_naming_it(
        world: local.World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_TOKEN_LOCAL", raising=False)
    inv = _inventory(tmp_path, world, token_env="RAY_TOKEN_LOCAL")
    res, took = _submit(inv, tmp_path)
    assert res.exit_code == 2, res.output
    assert took < SECONDS
    assert _lines(res)[0] == (
        "preflight: local: environment variable RAY_TOKEN_LOCAL (token_env) is not set: "
        "export RAY_TOKEN_LOCAL=<the token the cluster was started with>")
    assert len(_lines(res)) == 2 and "nothing was submitted" in _lines(res)[1]
    # Nothing recorded: no run in the journal.
    with Journal(tmp_path / "j.db") as j:
        assert j.runs() == []


def test_a_wrong_token_fails_at_once_with_the_fix(
        world: local.World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_TOKEN_LOCAL", "not-the-token")
    inv = _inventory(tmp_path, world, token_env="RAY_TOKEN_LOCAL")
    res, took = _submit(inv, tmp_path)
    assert res.exit_code == 2, res.output
    assert took < SECONDS
    line = _lines(res)[0]
    assert line.startswith(f"preflight: local: Ray cluster at {world.head.address} refused the "
                           "credentials (HTTP ")
    assert line.endswith("set environment variable RAY_TOKEN_LOCAL (token_env) to the token "
                         "the cluster was started with")
    assert "get-auth-token" not in res.output and "not-the-token" not in res.output


def test_the_right_token_by_variable_passes(
        world: local.World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_TOKEN_LOCAL", world.token_file.read_text().strip())
    inv = _inventory(tmp_path, world, token_env="RAY_TOKEN_LOCAL")
    res = runner.invoke(app, ["preflight", "--inventory", str(inv)])
    assert res.exit_code == 0, res.output


def test_an_unreachable_cluster_is_named_not_a_policy_rejection(
        world: local.World, tmp_path: Path) -> None:
    inv = _inventory(tmp_path, world, token_file=str(world.token_file))
    text = inv.read_text().replace(world.head.address, "http://127.0.0.1:9")
    inv.write_text(text)
    res, took = _submit(inv, tmp_path)
    assert res.exit_code == 2, res.output
    assert took < SECONDS
    assert _lines(res)[0] == (
        "preflight: local: Ray cluster at http://127.0.0.1:9 does not answer ([Errno 111] "
        "Connection refused, 3s timeout): start it, or fix the site's cluster.address")
    assert "polic" not in res.output


def test_unpinned_images_are_named_with_the_fix() -> None:
    p = pipeline(job("a", image="ghcr.io/acme/nlp:latest"),
                 job("b", image="ghcr.io/acme/nlp@sha256:" + "0" * 64))
    problems = check_images(p)
    assert [(x.check, x.subject) for x in problems] == [("image", "a")]
    assert str(problems[0]).startswith("job a: image ghcr.io/acme/nlp:latest is not pinned: "
                                       "name it by digest")


# -- stores -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onprem_store() -> Iterator[Any]:
    from tests.backends.s3_server import moto_server

    with moto_server() as url:
        yield url


def _store_sites(endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    inv = Inventory.model_validate({"name": "s", "sites": {"dc": {
        "location": "onprem:dc1", "country": "DE",
        "pools": [{"gpu": "A100-80GB", "count": 1, "cost_per_gpu_hour": "$1"}],
        "storage": f"s3://{bucket}/placer", "storage_endpoint": endpoint}}})
    return resolve_inventory(inv, default_catalog())


def test_a_writable_store_passes_and_a_missing_bucket_does_not(
        onprem_store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from tests.backends.s3_server import ACCESS_KEY, SECRET_KEY

    s3 = boto3.client("s3", endpoint_url=onprem_store, region_name="us-east-1",
                      aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    s3.create_bucket(Bucket="dc-store")
    assert preflight(_store_sites(onprem_store, "dc-store", monkeypatch)) == []
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="dc-store")["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("placer/.placer-preflight/")

    t0 = time.monotonic()
    problems = preflight(_store_sites(onprem_store, "no-such-bucket", monkeypatch))
    assert time.monotonic() - t0 < SECONDS
    assert [(p.check, p.subject) for p in problems] == [("store", "dc")]
    msg = str(problems[0])
    assert msg.startswith("dc: storage s3://no-such-bucket/placer is not writable (")
    assert msg.endswith("): create it, grant write access, or fix the site's storage / "
                        "storage_endpoint")
    assert "\n" not in msg


# -- a site that goes down is not a policy's doing --------------------------------------------

def test_a_down_site_with_no_other_is_not_called_a_policy_rejection(tmp_path: Path) -> None:
    import placer
    from placer.models import Inventory
    from tests.executor.world import EU, World

    world = World(tmp_path, pipeline=pipeline(job("a"), job("b", after=["a"])))
    world.inventory = Inventory.model_validate({"name": "one", "sites": {EU: {
        "location": "onprem:fra-dc1", "country": "DE",
        "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": "$2.0"}]}}})
    world.policies = placer.load_policies()  # none

    def hook(point: str, run_id: str, job_name: str) -> None:
        if point == "after_submit" and job_name == "a":
            world.fakes[EU].down = True

    st = world.start(hook).wait(timeout=1000)
    assert st.jobs["a"].state == "STUCK"
    assert st.jobs["a"].reason == ("no eligible site left for a: it may run only on eu-dc "
                                   "(down); the inventory has no other site to move it to")
    plan = placer.plan(world.pipeline, world.inventory, world.policies, exclude_sites=[EU])
    assert plan.reasons[0] == "a: every allowed site (eu-dc) is excluded; there is no other site"


def test_preflight_of_a_site_the_inventory_lacks_is_bad_input(world: local.World) -> None:
    res = runner.invoke(app, ["preflight", "--inventory", str(world.inventory),
                              "--site", "munich"])
    assert res.exit_code == 2
    assert res.output.strip() == (f"error: {world.inventory}: no site named munich "
                                  "(sites: local)")


def test_resume_with_a_token_gone_fails_at_once_and_leaves_the_run_as_it_was(
        world: local.World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14, problem 2, after the submit: a run resumed once its token is gone was retried
    silently for minutes; now ``resume`` says which variable, exits 2, and changes nothing."""
    monkeypatch.setenv("RAY_TOKEN_LOCAL", world.token_file.read_text().strip())
    inv = _inventory(tmp_path, world, token_env="RAY_TOKEN_LOCAL")
    res = runner.invoke(app, ["submit", str(LOCAL_PIPELINE), "--inventory", str(inv),
                              "--journal", str(tmp_path / "j.db"), "--no-wait"],
                        env={"PLACER_NO_CONTROLLER": "1"})
    assert res.exit_code == 0, res.output
    with Journal(tmp_path / "j.db") as j:
        [run] = j.runs()
        before = [(s.job, s.attempt, s.state) for s in j.steps(run.id)]
    monkeypatch.delenv("RAY_TOKEN_LOCAL")
    t0 = time.monotonic()
    res = runner.invoke(app, ["resume", run.id, "--journal", str(tmp_path / "j.db")])
    assert res.exit_code == 2, res.output
    assert time.monotonic() - t0 < SECONDS
    lines = _lines(res)
    assert lines[0] == ("preflight: local: environment variable RAY_TOKEN_LOCAL (token_env) is "
                        "not set: export RAY_TOKEN_LOCAL=<the token the cluster was started "
                        "with>")
    assert f"placer resume {run.id} again" in lines[1]
    with Journal(tmp_path / "j.db") as j:
        assert [(s.job, s.attempt, s.state) for s in j.steps(run.id)] == before
    # With the token back, the same command drives the run to its end.
    monkeypatch.setenv("RAY_TOKEN_LOCAL", world.token_file.read_text().strip())
    res = runner.invoke(app, ["resume", run.id, "--journal", str(tmp_path / "j.db")])
    assert res.exit_code == 0, res.output
