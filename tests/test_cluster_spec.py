"""Cluster specs for cloud sites: validated against the schema Ray ships and KubeRay's API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from placer.backends import cluster_renderers
from placer.cluster_spec import planned_offer, render_yaml
from placer.errors import CatalogError, ConfigError
from placer.models import Cluster, JobPlacement, Location, Offer, ResolvedSite
from placer_k8s import raycluster_manifest
from placer_ray import launcher_config


def ray_schema() -> dict[str, Any]:
    import ray

    path = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


RAYJOB_SCHEMA = json.loads((Path(__file__).parent / "backends" / "schemas"
                            / "kuberay-rayjob-v1.schema.json").read_text())
RAYCLUSTER_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {"apiVersion": {"const": "ray.io/v1"}, "kind": {"const": "RayCluster"},
                   "spec": {"$ref": "#/$defs/rayClusterSpec"}},
    "$defs": RAYJOB_SCHEMA["$defs"],
}
REGIONS = {"aws": ("eu-central-1", "DE", "p4d.24xlarge"), "gcp": ("europe-west4", "NL",
           "a2-ultragpu-8g"), "azure": ("westeurope", "NL", "Standard_ND96amsr_A100_v4")}


def cloud_site(provider: str, **options: str) -> ResolvedSite:
    region, country, instance = REGIONS[provider]
    return ResolvedSite(
        name=f"{provider}-eu", kind="cloud",
        location=Location(provider=provider, region=region, country=country),
        offers=(Offer(gpu="H100", gpus_per_node=8, on_demand=90, instance_type="h100-node"),
                Offer(gpu="A100-80GB", gpus_per_node=8, on_demand=40, spot=15,
                      instance_type=instance)),
        cluster=Cluster(backend="ray", namespace="ml", options=options))


def planned(gpus: int = 16, nodes: int = 2, spot: bool = True) -> JobPlacement:
    return JobPlacement(site="x", location="aws:eu-central-1", gpu="A100-80GB", gpus=gpus,
                        nodes=nodes, spot=spot, start_h=0, end_h=6, cost_usd=0,
                        compute_usd=0, transfer_usd=0, transfer_h=0)


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure"])
@pytest.mark.parametrize("spot", [True, False])
def test_launcher_config_is_valid_for_ray(provider: str, spot: bool) -> None:
    site = cloud_site(provider, project_id="acme-ml")
    cfg = launcher_config(site, planned(spot=spot), image="rayproject/ray:2.40.0-gpu")
    jsonschema.validate(cfg, ray_schema())
    assert yaml.safe_load(render_yaml(cfg)) == cfg
    worker = cfg["available_node_types"]["gpu_worker"]
    assert worker["min_workers"] == worker["max_workers"] == cfg["max_workers"] == 2
    assert worker["resources"] == {"GPU": 8, "gpu_type:A100-80GB": 8}
    head = cfg["available_node_types"]["head"]["node_config"]
    assert "InstanceMarketOptions" not in head and "priority" not in head.get(
        "azure_arm_parameters", {})


def test_aws_spot_and_region() -> None:
    cfg = launcher_config(cloud_site("aws"), planned(spot=True))
    assert cfg["provider"] == {"type": "aws", "region": "eu-central-1",
                               "cache_stopped_nodes": False}
    node = cfg["available_node_types"]["gpu_worker"]["node_config"]
    assert node["InstanceType"] == "p4d.24xlarge"
    assert node["InstanceMarketOptions"] == {"MarketType": "spot"}
    on_demand = launcher_config(cloud_site("aws"), planned(spot=False))
    assert "InstanceMarketOptions" not in on_demand["available_node_types"]["gpu_worker"][
        "node_config"]


def test_gcp_spot_uses_the_spot_provisioning_model() -> None:
    cfg = launcher_config(cloud_site("gcp", project_id="acme-ml"), planned(spot=True))
    assert cfg["provider"]["availability_zone"] == "europe-west4-a"
    node = cfg["available_node_types"]["gpu_worker"]["node_config"]
    assert node["machineType"] == "a2-ultragpu-8g"
    assert node["scheduling"] == {"onHostMaintenance": "TERMINATE", "automaticRestart": False,
                                  "provisioningModel": "SPOT",
                                  "instanceTerminationAction": "DELETE"}


def test_gcp_needs_a_project() -> None:
    with pytest.raises(ConfigError) as info:
        launcher_config(cloud_site("gcp"), planned())
    assert info.value.details[0].field == "sites.gcp-eu.cluster.options.project_id"


def test_azure_spot_priority() -> None:
    cfg = launcher_config(cloud_site("azure"), planned(spot=True))
    params = cfg["available_node_types"]["gpu_worker"]["node_config"]["azure_arm_parameters"]
    assert params["vmSize"] == "Standard_ND96amsr_A100_v4" and params["priority"] == "Spot"
    assert cfg["provider"]["location"] == "westeurope"


def test_nodes_cover_the_planned_gpus_and_max_workers_only_raises() -> None:
    cfg = launcher_config(cloud_site("aws"), planned(gpus=20, nodes=0), max_workers=1)
    worker = cfg["available_node_types"]["gpu_worker"]
    assert worker["min_workers"] == 3 and worker["max_workers"] == 3


def test_an_unknown_offer_or_an_onprem_site_is_refused() -> None:
    bad = planned().model_copy(update={"gpu": "T4"})
    with pytest.raises(CatalogError, match="no spot offer for T4"):
        planned_offer(cloud_site("aws"), bad)
    onprem = ResolvedSite(name="dc", kind="onprem",
                          location=Location(provider="onprem", region="fra", country="DE"))
    with pytest.raises(ConfigError):
        launcher_config(onprem, planned())


@pytest.mark.parametrize("provider", ["aws", "gcp", "azure"])
def test_raycluster_is_valid_and_selects_the_planned_spot_instances(provider: str) -> None:
    m = raycluster_manifest(cloud_site(provider), planned(spot=True),
                            image="rayproject/ray:2.40.0-gpu", ray_version="2.40.0")
    jsonschema.validate(m, RAYCLUSTER_SCHEMA)
    spec = m["spec"]
    templates = [spec["headGroupSpec"]["template"]] + [
        w["template"] for w in spec["workerGroupSpecs"]]
    for i, t in enumerate(templates):
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate",
                                      "metadata": {"name": f"t{i}"}, "template": t},
                                     "1.37.0", strict=True)
    (worker,) = spec["workerGroupSpecs"]
    pod = worker["template"]["spec"]
    assert pod["nodeSelector"]["node.kubernetes.io/instance-type"] == REGIONS[provider][2]
    assert len(pod["nodeSelector"]) == 2 and len(pod["tolerations"]) == 2
    assert worker["replicas"] == 2
    assert json.loads(worker["rayStartParams"]["resources"].strip("'")) == {
        "gpu_type:A100-80GB": 8}
    assert m["metadata"]["namespace"] == "ml"


def test_the_gpu_type_resource_matches_the_ray_backend() -> None:
    placer_ray = pytest.importorskip("placer_ray")
    cfg = launcher_config(cloud_site("aws"), planned())
    assert placer_ray.gpu_resource("A100-80GB") in cfg["available_node_types"]["gpu_worker"][
        "resources"]
    m = raycluster_manifest(cloud_site("aws"), planned(), image="rayproject/ray:2.40.0-gpu")
    (worker,) = m["spec"]["workerGroupSpecs"]
    assert placer_ray.gpu_resource("A100-80GB") in worker["rayStartParams"]["resources"]


def test_each_format_is_rendered_by_the_backend_that_offers_it() -> None:
    """The command finds renderers through the placer.backends entry points, by format."""
    renderers = cluster_renderers()
    assert {name: getattr(b, "__name__", b) for name, (_, b) in renderers.items()} == {
        "launcher": "RayJobsBackend", "raycluster": "KubernetesBackend"}
    assert not renderers["launcher"][0].needs_image and renderers["raycluster"][0].needs_image
    site, placement = cloud_site("aws"), planned()
    assert renderers["launcher"][1].render_cluster(site, placement, "launcher") == (
        launcher_config(site, placement))
    assert renderers["raycluster"][1].render_cluster(site, placement, "raycluster",
                                                     image="img") == (
        raycluster_manifest(site, placement, image="img"))


# -- the command ------------------------------------------------------------------------------
QS = Path(__file__).resolve().parents[1] / "examples" / "quickstart"


def plan_file(tmp_path: Path, *placements: tuple[str, str, str, bool]) -> Path:
    from placer.models import Plan

    jobs = {name: planned(gpus=8, nodes=1, spot=spot).model_copy(
        update={"site": site, "gpu": gpu}) for name, site, gpu, spot in placements}
    plan = Plan(status="placed", objective="cost", optimal=True, cost_usd=1, makespan_h=1,
                policy_hash="h", jobs=jobs)
    path = tmp_path / "plan.json"
    path.write_text(plan.model_dump_json())
    return path


def test_cli_renders_a_valid_launcher_config(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from placer.cli import app

    plan = plan_file(tmp_path, ("pretrain", "aws-us-east-1", "A100-80GB", True),
                     ("tokenize", "fra-dc", "V100", False))
    out = tmp_path / "cluster.yaml"
    res = CliRunner().invoke(app, ["cluster-spec", str(plan), "--site", "aws-us-east-1",
                                   "--inventory", str(QS / "inventory.yaml"),
                                   "--output-file", str(out)])
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load(out.read_text())
    jsonschema.validate(cfg, ray_schema())
    assert cfg["provider"]["region"] == "us-east-1"
    worker = cfg["available_node_types"]["gpu_worker"]["node_config"]
    assert worker["InstanceMarketOptions"] == {"MarketType": "spot"}
    assert "&id" not in out.read_text()

    res = CliRunner().invoke(app, ["cluster-spec", str(plan), "--site", "aws-us-east-1",
                                   "--inventory", str(QS / "inventory.yaml"),
                                   "--format", "raycluster", "--image", "rayproject/ray:2.40.0"])
    assert res.exit_code == 0, res.output
    jsonschema.validate(yaml.safe_load(res.stdout), RAYCLUSTER_SCHEMA)


def test_cli_refuses_an_ambiguous_site_and_names_the_fix(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from placer.cli import app

    plan = plan_file(tmp_path, ("a", "aws-us-east-1", "A100-80GB", True),
                     ("b", "aws-us-east-1", "A100-80GB", False))
    args = ["cluster-spec", str(plan), "--site", "aws-us-east-1",
            "--inventory", str(QS / "inventory.yaml")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "name one job" in res.output
    assert CliRunner().invoke(app, [*args, "--job", "b"]).exit_code == 0
    assert CliRunner().invoke(app, [*args[:3], "fra-dc", *args[4:]]).exit_code == 2
