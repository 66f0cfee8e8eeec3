"""The Python builder gives exactly the models the YAML loader gives, both ways round, and its
mistakes are PipelineErrors that name the job."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import placer
from placer.api import PipelineBuilder
from placer.errors import ErrorDetail, PipelineError

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "examples" / "quickstart"

SECOND = """\
apiVersion: placer/v1
kind: Pipeline
name: fan-in
datasets:
  claims: {uri: "s3://acme/claims/", size: 1.5TB, location: aws:eu-central-1,
           tags: {residency: EU}, replicas: ["aws:eu-west-1"]}
jobs:
  clean:
    command: python -m clean
    resources: {gpus: 2, cpus: 16, memory: 64GB}
    gpu_types: {L4: 90m}
    inputs: [claims]
    outputs: {rows: 200GB, stats: 1GB}
    runtime_env: {pip: [pandas==2.2.2], env_vars: {MODE: strict}}
  embed:
    command: python -m embed
    gpu_types: {A100-80GB: 2h, H100: 1h15m}
    inputs: [clean.rows]
    outputs: {vectors: 50GB}
    labels: {team: search}
  report:
    command: python -m report
    gpu_types: {T4: 10m}
    inputs: [clean.stats, embed.vectors]
    after: [clean]
    spot: true
"""


def _second() -> PipelineBuilder:
    p = placer.pipeline("fan-in")
    claims = p.dataset("claims", uri="s3://acme/claims/", size="1.5TB",
                       location="aws:eu-central-1", tags={"residency": "EU"},
                       replicas=["aws:eu-west-1"])
    clean = p.job("clean", command="python -m clean", gpus=2, cpus=16, memory="64GB",
                  gpu_types={"L4": "90m"}, inputs=[claims],
                  outputs={"rows": "200GB", "stats": "1GB"},
                  runtime_env={"pip": ["pandas==2.2.2"], "env_vars": {"MODE": "strict"}})
    embed = p.job("embed", command="python -m embed",
                  gpu_types={"A100-80GB": "2h", "H100": "1h15m"},
                  inputs=[clean.output("rows")], outputs={"vectors": "50GB"},
                  labels={"team": "search"})
    report = p.job("report", command="python -m report", gpu_types={"T4": "10m"},
                   inputs=[clean.output("stats"), embed.output()], spot=True)
    clean >> report
    return p


def _quickstart() -> PipelineBuilder:
    builder = runpy.run_path(str(QUICKSTART / "pipeline.py"))["p"]
    assert isinstance(builder, PipelineBuilder)
    return builder


@pytest.mark.parametrize(("builder", "yaml_text"), [
    (_quickstart, (QUICKSTART / "pipeline.yaml").read_text(encoding="utf-8")),
    (_second, SECOND),
], ids=["quickstart", "fan-in"])
def test_builder_yaml_and_models_round_trip(builder: object, yaml_text: str,
                                            tmp_path: Path) -> None:
    src = tmp_path / "pipeline.yaml"
    src.write_text(yaml_text, encoding="utf-8")
    from_yaml = placer.load_pipeline(src)
    built = builder().build()  # type: ignore[operator]
    assert built == from_yaml
    # models → YAML text → models
    again = tmp_path / "again.yaml"
    text = placer.dump_pipeline(from_yaml, again)
    assert placer.load_pipeline(again) == from_yaml
    assert yaml.safe_load(text)["kind"] == "Pipeline"
    # what the builder writes is a pipeline file too
    (tmp_path / "built.yaml").write_text(builder().to_yaml(), encoding="utf-8")  # type: ignore[operator]
    assert placer.load_pipeline(tmp_path / "built.yaml") == from_yaml


def test_the_quickstart_in_python_is_the_quickstart_in_yaml() -> None:
    assert _quickstart().build() == placer.load_pipeline(QUICKSTART / "pipeline.yaml")


EXAMPLE_PIPELINES = sorted(
    p for p in (ROOT / "examples").rglob("*.yaml")
    if (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("kind") == "Pipeline")


@pytest.mark.parametrize("path", EXAMPLE_PIPELINES, ids=lambda p: p.name)
def test_every_example_pipeline_dumps_to_an_equal_file(path: Path, tmp_path: Path) -> None:
    model = placer.load_pipeline(path)
    placer.dump_pipeline(model, tmp_path / "p.yaml")
    assert placer.load_pipeline(tmp_path / "p.yaml") == model


def test_dump_writes_units_where_they_read_back_exactly() -> None:
    text = placer.dump_pipeline(_second().build())
    job = yaml.safe_load(text)["jobs"]["clean"]
    assert job["gpu_types"] == {"L4": "1h30m"}
    assert job["outputs"] == {"rows": "200GB", "stats": "1GB"}
    assert job["resources"] == {"gpus": 2, "cpus": 16.0, "memory": "64GB"}
    assert yaml.safe_load(text)["datasets"]["claims"]["size"] == "1500GB"


def _error(fn: object) -> PipelineError:
    with pytest.raises(PipelineError) as info:
        fn()  # type: ignore[operator]
    return info.value


def _job(p: PipelineBuilder, name: str, **kw: object) -> placer.api.JobRef:
    return p.job(name, command="run", gpu_types={"T4": "1h"}, **kw)  # type: ignore[arg-type]


def test_a_cycle_names_the_jobs_by_name() -> None:
    p = placer.pipeline("loop")
    a, b, c = (_job(p, n) for n in "abc")
    a >> b >> c >> a
    err = _error(p.build)
    assert err.details == [ErrorDetail("jobs form a cycle: a → b → c → a",
                                       file="<pipeline 'loop' built in Python>",
                                       field="jobs.b", loc=("jobs", "b"))]


def test_duplicate_names_are_refused_where_they_are_written() -> None:
    p = placer.pipeline("dup")
    _job(p, "train")
    assert str(_error(lambda: _job(p, "train"))) == (
        "pipeline 'dup' already has a job named 'train'; name this job differently")
    assert str(_error(lambda: p.dataset("train"))) == (
        "pipeline 'dup' already has a job named 'train'; name this dataset differently")


def test_unknown_jobs_datasets_and_outputs_are_named() -> None:
    p = placer.pipeline("refs")
    tok = _job(p, "tok", outputs={"shards": "1GB"})
    assert str(_error(lambda: tok.output("nope"))) == (
        "job 'tok' has no output 'nope' (its outputs: shards)")
    assert str(_error(lambda: _job(p, "x", after=["ghost"]))) == (
        "job 'x' runs after unknown job 'ghost' (jobs: tok)")
    assert str(_error(lambda: _job(p, "y", inputs=["tok.shards"]))) == (
        "job 'y' reads 'tok.shards', which is not a dataset of pipeline 'refs' (to read a "
        "job's output, pass its handle's .output(name))")
    other = placer.pipeline("other")
    theirs = _job(other, "theirs", outputs={"o": 1})
    assert str(_error(lambda: _job(p, "z", inputs=[theirs.output("o")]))) == (
        "job 'z' uses job 'theirs', of pipeline 'other', not of 'refs'")
    assert str(_error(lambda: tok >> theirs)) == (
        "job 'theirs' is of pipeline 'other', not of 'refs'")


def test_a_bad_field_is_reported_at_the_call_that_wrote_it() -> None:
    p = placer.pipeline("bad")
    err = _error(lambda: p.job("train", command="run", gpu_types={"T4": "-1h"}))
    assert [(d.field, d.msg) for d in err.details] == [
        ("jobs.train.gpu_types.T4", "duration must not be negative, got '-1h'")]
    assert isinstance(err, placer.PlacerError)
    err = _error(lambda: p.job("t2", command="run", gpu_types={"T4": 1}, gpus=2,
                               resources={"gpus": 2}))
    assert str(err) == "job 't2': give resources= or gpus=, not both"


def test_an_empty_pipeline_and_an_unknown_region_are_refused() -> None:
    assert str(_error(placer.pipeline("none").build)) == (
        "pipeline 'none' has no jobs: add one with p.job(...)")
    p = placer.pipeline("where")
    d = p.dataset("d", location="aws:mars-1")
    _job(p, "j", inputs=[d])
    [detail] = _error(p.build).details
    assert detail.field == "datasets.d.location"


def test_rshift_chains_and_fans_out_and_in() -> None:
    p = placer.pipeline("dag")
    a, b, c, d = (_job(p, n) for n in "abcd")
    a >> [b, c]
    [b, c] >> d
    d << a
    built = p.build()
    assert {j.name: j.after for j in built.jobs} == {
        "a": (), "b": ("a",), "c": ("a",), "d": ("b", "c", "a")}


def test_import_placer_loads_neither_the_executor_nor_the_api() -> None:
    code = ("import sys, placer; print(sorted(m for m in ('placer.executor', 'placer.api', "
            "'placer.backends') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_a_function_job_ships_its_module_and_reads_values_and_uris() -> None:
    sys.path.insert(0, str(QUICKSTART))
    try:
        import tally
    finally:
        sys.path.remove(str(QUICKSTART))
    p = placer.pipeline("numbers")
    raw = p.dataset("raw", uri="s3://acme/raw/", location="aws:eu-central-1")
    nums = p.add(tally.make_numbers, name="nums", python="/opt/py/bin/python",
                 runtime_env={"env_vars": {"A": "1"}})
    with p:
        summary = tally.summarise(nums, raw)
    built = p.build()
    job = built.job("summarise")
    assert job.command == ("python -m placer.api tally:summarise --value nums.result "
                           "--uri raw")
    assert job.inputs == ("nums.result", "raw") and job.outputs == {"summary": 0.0}
    assert job.runtime_env == {"working_dir": str(QUICKSTART)}
    assert built.job("nums").command == "/opt/py/bin/python -m placer.api tally:make_numbers"
    assert built.job("nums").runtime_env == {"env_vars": {"A": "1"},
                                             "working_dir": str(QUICKSTART)}
    assert summary.output().name == "summary"
    assert tally.summarise([5]) == {"total": 5, "n": 1}  # outside a builder: the function


def test_function_job_mistakes_are_pipeline_errors() -> None:
    sys.path.insert(0, str(QUICKSTART))
    try:
        import tally
    finally:
        sys.path.remove(str(QUICKSTART))
    p = placer.pipeline("bad")
    assert "is not a placer job" in str(_error(lambda: p.add(print)))
    assert "does not allow beside an image" in str(_error(
        lambda: p.add(tally.make_numbers, image="ghcr.io/acme/x@sha256:00")))
    assert "not str 'raw'" in str(_error(lambda: p.add(tally.summarise, "raw")))
    with p:
        assert "pass its inputs positionally" in str(_error(lambda: tally.summarise(numbers=1)))
    assert "sets command itself" in str(_error(lambda: placer.job(command="x")))


def test_the_function_module_in_the_docs_is_the_example_file() -> None:
    text = (ROOT / "docs" / "python-api.md").read_text(encoding="utf-8")
    block = text.partition("<!-- docs-test: skip the module examples/quickstart/tally.py")[2]
    code = block.partition("```python\n")[2].partition("```")[0]
    assert code.strip() and code in (QUICKSTART / "tally.py").read_text(encoding="utf-8")
