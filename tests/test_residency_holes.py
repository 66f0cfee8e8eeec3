"""Regression tests for the residency holes found by attacking placer (issue 9).

Each test is the reproducer as an attacker ran it: through the CLI where the attack went through
the CLI, and through the executor where the data would have moved. Each failed on the code
before the fix. The holes fixed in other modules have their tests beside those modules
(journal, network links, storage, YAML); this file holds the ones in naming, tags, policy
loading and rule checking.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import placer
from placer.backends import PrefixLayout
from placer.cli import app
from placer.errors import PolicyError
from placer.executor import Executor
from placer.journal import Journal
from placer.models import Dataset, Inventory, Pipeline
from placer.policy import evaluate, lineage_tags, load_policies
from placer.testing import FakeComputeBackend
from tests.builders import job, pipeline

runner = CliRunner()

INVENTORY = """\
apiVersion: placer/v1
kind: Inventory
sites:
  fra-dc:
    location: onprem:fra-dc1
    country: DE
    pools: [{gpu: A100-80GB, count: 8, cost_per_gpu_hour: $3.00}]
  aws-us-east-1:
    location: aws:us-east-1
"""

EU_ONLY = """\
apiVersion: placer/v1
kind: PolicySet
name: eu
required_tags: [residency]
rules:
  - id: eu-stays-in-eea
    effect: require
    match: {tags: {residency: EU}}
    sites: ["jurisdiction:EEA"]
    message: EU data stays in the EEA.
"""


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- hole 1: a dataset named like a job output ----------------------------------------------------

COLLIDING = """\
apiVersion: placer/v1
kind: Pipeline
name: collide
datasets:
  eu-raw: {location: "onprem:fra-dc1", size: 10GB, tags: {residency: EU, classification: pii}}
  prep.features:
    {location: "aws:us-east-1", size: 1GB, tags: {residency: US, classification: public}}
jobs:
  prep:
    command: python prep.py
    gpu_types: {A100-80GB: 1h}
    inputs: [eu-raw]
    outputs: {features: 5GB}
  train:
    command: python train.py
    gpu_types: {A100-80GB: 2h}
    inputs: [prep.features]
"""


def test_dataset_named_like_a_job_output_is_refused_at_load_with_its_line(tmp_path: Path) -> None:
    pipe = _write(tmp_path / "pipeline.yaml", COLLIDING)
    inv = _write(tmp_path / "inventory.yaml", INVENTORY)
    pol = _write(tmp_path / "policies" / "eu.yaml", EU_ONLY)
    res = runner.invoke(app, ["plan", str(pipe), "--inventory", str(inv), "--policies", str(pol)])
    assert res.exit_code == 2, res.output
    err = " ".join(res.stderr.split())
    assert f"{pipe}:6: datasets.prep.features: dataset 'prep.features' has the name of job " \
        "'prep''s output 'features'" in err
    res = runner.invoke(app, ["validate", str(pipe)])
    assert res.exit_code == 2


@pytest.mark.parametrize(
    ("datasets", "jobs", "message"),
    [
        # unused, but a reader would take it for prep's output
        ({"prep.other": {}}, {"prep": {"outputs": {"features": 1}}}, "starts with the name of job"),
        # case-only differences: one prefix on a case-insensitive store
        ({}, {"Train": {}, "train": {}}, "differs from job 'Train' only in case"),
        ({"Raw": {}, "raw": {}}, {"a": {}}, "differs from dataset 'Raw' only in case"),
        ({}, {"a": {"outputs": {"Out": 1, "out": 1}}}, "only in case"),
        # job "a.b" output "c" and job "a" output "b.c" are both a.b.c
        ({}, {"a.b": {"outputs": {"c": 1}}, "a": {"outputs": {"b.c": 1}}}, "are both written"),
        # an output reference that is also a job's name
        ({}, {"a": {"outputs": {"b": 1}}, "a.b": {}}, "which is also the name of job"),
        # an output name that is a path
        ({}, {"a": {"outputs": {"../eu": 1}}}, "String should match pattern"),
    ],
)
def test_every_name_means_one_thing(datasets: dict, jobs: dict, message: str) -> None:
    spec = {
        "datasets": [{"name": n, "location": "aws:us-east-1", **d} for n, d in datasets.items()],
        "jobs": [{"name": n, "command": "x", "gpu_types": {"T4": 1}, **j} for n, j in jobs.items()],
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        Pipeline.model_validate(spec)


def test_lineage_dag_and_staging_read_one_resolved_reference() -> None:
    """A dotted job name and a dotted output: the only reading is the declared one."""
    p = pipeline(
        job("prep.v2", inputs=["eu"], outputs={"features.parquet": 1}),
        job("train", inputs=["prep.v2.features.parquet"]),
        datasets=(Dataset(name="eu", location="onprem:fra-dc1", tags={"residency": "EU"}),),
    )
    ref = p.input_ref("prep.v2.features.parquet")
    assert (ref.dataset, ref.job, ref.output) == (None, "prep.v2", "features.parquet")
    assert list(p.job_edges()) == [("train", "prep.v2", 1.0)]
    assert lineage_tags(p)["train"] == {"residency": frozenset({"EU"})}


def test_executor_refuses_a_placement_its_policies_forbid(tmp_path: Path) -> None:
    """The plan says US; the run's own policies say EEA: nothing is submitted or copied."""
    inv = Inventory.model_validate({"sites": {
        "eu-dc": {"location": "onprem:fra-dc1", "country": "DE",
                  "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 2}]},
        "us-dc": {"location": "onprem:nyc-dc1", "country": "US",
                  "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 1}]},
    }})
    p = pipeline(
        job("train", inputs=["eu"]),
        datasets=(Dataset(name="eu", location="onprem:fra-dc1", tags={"residency": "EU"}),),
    )
    pols = load_policies(_write(tmp_path / "eu.yaml", EU_ONLY))
    honest = placer.plan(p, inv, pols)
    assert honest.jobs["train"].site == "eu-dc"
    # A plan that disagrees with the policies (a bug, or an edited plan file).
    forged = honest.model_copy(update={"jobs": {"train": honest.jobs["train"].model_copy(
        update={"site": "us-dc", "location": "onprem:nyc-dc1"})}})
    fakes = {"eu-dc": FakeComputeBackend("eu-dc"), "us-dc": FakeComputeBackend("us-dc")}
    ex = Executor(Journal(tmp_path / "j.db"), fakes, layout=PrefixLayout(
        {"onprem:fra-dc1": "mem://fra/p", "onprem:nyc-dc1": "mem://nyc/p"}))
    st = ex.start(forged, pipeline=p, inventory=inv, policies=pols).status()
    assert st.jobs["train"].state == "STUCK"
    assert "refused to run train on us-dc" in (st.jobs["train"].reason or "")
    assert fakes["us-dc"].submissions == [] and fakes["eu-dc"].submissions == []


# -- hole 3: tag values normalised by case only ----------------------------------------------------

SITES = placer.catalog.resolve_inventory(Inventory.model_validate({"sites": {
    "fra-dc": {"location": "onprem:fra-dc1", "country": "DE",
               "pools": [{"gpu": "A100-80GB", "count": 8, "cost_per_gpu_hour": 2}]},
    "aws-us-east-1": {"location": "aws:us-east-1"},
}}))


@pytest.mark.parametrize("value", ["EU ", "ＥＵ", "\u2003EU", "EU\u00a0", "eu", "ЕU", "ΕU", "ᴇu"])
def test_spellings_of_eu_cannot_escape_the_eu_rule(tmp_path: Path, value: str) -> None:
    pols = load_policies(_write(tmp_path / "eu.yaml", EU_ONLY))
    p = pipeline(job("train", inputs=["d"]),
                 datasets=(Dataset(name="d", location="onprem:fra-dc1",
                                   tags={"residency": value}),))
    assert evaluate(p, SITES, pols)["train"].allowed == ("fra-dc",)


@pytest.mark.parametrize("key", ["Residency", "RESIDENCY ", "ｒｅｓｉｄｅｎｃｙ"])
def test_spellings_of_the_key_cannot_escape_the_rule(tmp_path: Path, key: str) -> None:
    pols = load_policies(_write(tmp_path / "eu.yaml", EU_ONLY))
    p = pipeline(job("train", inputs=["d"]),
                 datasets=(Dataset(name="d", location="onprem:fra-dc1", tags={key: "EU"}),))
    e = evaluate(p, SITES, pols)["train"]
    assert e.allowed == ("fra-dc",) and not e.held


def test_an_empty_required_tag_holds_the_job(tmp_path: Path) -> None:
    pols = load_policies(_write(tmp_path / "eu.yaml", EU_ONLY))
    for value in ("", "   ", "\u3000"):
        p = pipeline(job("train", inputs=["d"]),
                     datasets=(Dataset(name="d", location="onprem:fra-dc1",
                                       tags={"residency": value}),))
        e = evaluate(p, SITES, pols)["train"]
        assert e.allowed == () and e.held, value
        assert "empty value for the required tag 'residency'" in e.held[0]


@pytest.mark.parametrize("value", ["E\u200bU", "EU\u202e", "E\u0000U", "E\u2028U"])
def test_invisible_characters_in_tags_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="invisible character"):
        Dataset(name="d", tags={"residency": value})


def test_two_spellings_of_one_key_in_one_dataset_are_refused() -> None:
    with pytest.raises(ValueError, match="are the same key"):
        Dataset(name="d", tags={"residency": "US", "Residency": "EU"})


def test_spelling_variants_through_the_cli_never_place_eu_data_in_the_us(tmp_path: Path) -> None:
    inv = _write(tmp_path / "inventory.yaml", INVENTORY)
    pol = _write(tmp_path / "policies" / "eu.yaml", EU_ONLY)
    for i, value in enumerate(['"EU "', '"ＥＵ"', '"\\u2003EU"', '"EU\\u00a0"']):
        pipe = _write(tmp_path / f"p{i}.yaml", f"""\
apiVersion: placer/v1
kind: Pipeline
datasets:
  d: {{location: "onprem:fra-dc1", size: 1GB, tags: {{residency: {value}}}}}
jobs:
  train: {{command: x, gpu_types: {{A100-80GB: 1h, T4: 1h}}, inputs: [d]}}
""")
        res = runner.invoke(app, ["plan", str(pipe), "--inventory", str(inv), "--policies",
                                  str(pol), "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["jobs"]["train"]["site"] == "fra-dc", value


# -- hole 4: policy files skipped silently --------------------------------------------------------

FORBID_US = """\
apiVersion: placer/v1
kind: PolicySet
name: {name}
rules:
  - id: {name}
    effect: forbid
    match: {{tags: {{residency: EU}}}}
    sites: ["aws:us-east-1"]
    message: no EU data in Virginia.
"""


def test_every_policy_file_in_the_tree_is_loaded_whatever_its_case(tmp_path: Path) -> None:
    tree = tmp_path / "org"
    names = {"a": "a.YAML", "b": "b.Yml", "c": "team/c.yml", "d": "team/deep/er/d.yaml",
             "e": "E.yAmL"}
    for name, rel in names.items():
        _write(tree / rel, FORBID_US.format(name=name))
    _write(tree / "README.md", "# our rules")
    _write(tree / "team" / "notes.txt", "draft")
    ps = load_policies(tree)
    assert [r.id for r in ps.rules] == ["a", "b", "c", "d", "e"]
    assert ps.skipped == (str(tree / "README.md"), str(tree / "team" / "notes.txt"))
    res = runner.invoke(app, ["validate", str(tree)])
    assert res.exit_code == 0, res.output
    assert res.stdout.count("ok") == 5


def test_a_policy_folder_with_a_symlink_loop_ends(tmp_path: Path) -> None:
    tree = tmp_path / "org"
    _write(tree / "sub" / "a.yaml", FORBID_US.format(name="a"))
    (tree / "sub" / "loop").symlink_to(tree)
    assert [r.id for r in load_policies(tree).rules] == ["a"]


# -- hole 5: a misspelt region in a rule ----------------------------------------------------------

def _rule(sites: str, extra: str = "") -> str:
    return f"""\
apiVersion: placer/v1
kind: PolicySet
name: p
{extra}rules:
  - id: no-frankfurt
    effect: forbid
    match: {{}}
    sites: {sites}
    message: not there.
"""


def test_a_misspelt_region_in_a_forbid_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    pol = _write(tmp_path / "p.yaml", _rule("['aws:eu-centrall-1']"))
    res = runner.invoke(app, ["validate", str(pol)])
    assert res.exit_code == 2, res.output
    err = " ".join(res.stderr.split())
    assert f"{pol}:8: rules[0].sites[0]: unknown region aws:eu-centrall-1; did you mean " \
        "aws:eu-central-1?" in err
    pipe = _write(tmp_path / "pipe.yaml", "jobs: {a: {command: x, gpu_types: {T4: 1h}}}\n")
    res = runner.invoke(app, ["plan", str(pipe), "--policies", str(pol)])
    assert res.exit_code == 2 and "unknown region aws:eu-centrall-1" in res.stderr


@pytest.mark.parametrize(
    ("sites", "message"),
    [
        ("['aws:eu-centrall-*']", "matches no aws region the catalog knows"),
        ("['country:UK']", "'UK' is not an ISO 3166-1 alpha-2 country code; did you mean GB?"),
        ("['gcp:europe-west99']", "unknown region gcp:europe-west99"),
    ],
)
def test_patterns_naming_nothing_known_are_refused_at_load(
    tmp_path: Path, sites: str, message: str
) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        load_policies(_write(tmp_path / "p.yaml", _rule(sites)))


def test_a_typo_in_an_exclude_is_refused_too(tmp_path: Path) -> None:
    text = _rule("eea", "locations:\n  eea:\n    include: ['jurisdiction:EEA']\n"
                 "    exclude: ['azure:germanywestcentrall']\n")
    with pytest.raises(PolicyError) as info:
        load_policies(_write(tmp_path / "p.yaml", text))
    [d] = info.value.details
    assert (d.line, d.field) == (7, "locations.eea.exclude[0]")


@pytest.mark.parametrize(
    ("sites", "message"),
    [
        ("['onprem:fra-dc2']", "no on-prem site of the inventory is at onprem:fra-dc2; "
                               "did you mean onprem:fra-dc1?"),
        ("['site:fra-cd']", "no site named 'fra-cd' in the inventory; did you mean site:fra-dc?"),
        ("['jurisdiction:SOVREIGN']", "no site of the inventory is in jurisdiction 'SOVREIGN'"),
    ],
)
def test_patterns_naming_nothing_in_the_inventory_are_refused_at_plan(
    tmp_path: Path, sites: str, message: str
) -> None:
    pols = load_policies(_write(tmp_path / "p.yaml", _rule(sites)))
    inv = placer.load_inventory(_write(tmp_path / "inv.yaml", INVENTORY))
    p = pipeline(job("a"))
    with pytest.raises(PolicyError, match=re.escape(message)) as info:
        placer.plan(p, inv, pols)
    [d] = info.value.details
    assert (d.file, d.line, d.field) == (str(tmp_path / "p.yaml"), 8, "rules[0].sites[0]")


def test_declared_locations_mark_a_deliberate_unknown(tmp_path: Path) -> None:
    text = _rule("['aws:eu-south-9', 'onprem:nyc-dc9']",
                 "declared_locations: ['aws:eu-south-9', 'onprem:nyc-dc9']\n")
    pols = load_policies(_write(tmp_path / "p.yaml", text))
    inv = placer.load_inventory(_write(tmp_path / "inv.yaml", INVENTORY))
    assert placer.plan(pipeline(job("a")), inv, pols).status == "placed"


def test_plan_names_the_files_of_a_policy_tree_it_did_not_load(tmp_path: Path) -> None:
    tree = tmp_path / "org"
    _write(tree / "team" / "eu.YML", EU_ONLY)
    _write(tree / "team" / "eu.yaml.disabled", FORBID_US.format(name="off"))
    pipe = _write(tmp_path / "pipe.yaml", "jobs: {a: {command: x, gpu_types: {T4: 1h}}}\n")
    res = runner.invoke(app, ["plan", str(pipe), "--policies", str(tree)])
    assert res.exit_code == 0, res.output
    assert "note: not a policy file (not .yaml/.yml), not loaded: " \
        f"{tree / 'team' / 'eu.yaml.disabled'}" in " ".join(res.stderr.split())
