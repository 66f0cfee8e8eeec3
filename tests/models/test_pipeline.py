import pytest
from pydantic import ValidationError

from placer.errors import ErrorDetail, PipelineError
from placer.models import Dataset, Job, Location, Pipeline
from tests.builders import job, pipeline


def _pipeline_error(exc: ValidationError) -> PipelineError:
    [err] = exc.errors()
    inner = err["ctx"]["error"]
    assert isinstance(inner, PipelineError)
    return inner


def test_edges_come_from_outputs_and_after() -> None:
    p = pipeline(
        job("prep", outputs={"feat": "120GB"}),
        job("train", inputs=["prep.feat"], outputs={"model": "30GB"}),
        job("eval", inputs=["train.model"], after=["prep"]),
    )
    g = p.graph()
    assert dict(g.edges) == {
        ("prep", "train"): {"gb": 120.0},
        ("train", "eval"): {"gb": 30.0},
        ("prep", "eval"): {"gb": 0.0},
    }
    assert p.topological_order() == ["prep", "train", "eval"]


def test_topological_order_breaks_ties_by_declaration_order() -> None:
    p = pipeline(job("c"), job("a"), job("b"))
    assert p.topological_order() == ["c", "a", "b"]


def test_cycle_is_an_error_naming_the_jobs() -> None:
    with pytest.raises(ValidationError) as info:
        pipeline(job("a", after=["b"]), job("b", after=["a"]))
    assert _pipeline_error(info.value).details == [
        ErrorDetail("jobs form a cycle: a → b → a", loc=("jobs", 1))
    ]


def test_unknown_references_name_the_job_and_the_input() -> None:
    with pytest.raises(ValidationError) as info:
        pipeline(job("a", outputs={"x": 1}), job("b", inputs=["a.y", "nowhere", "a"], after=["z"]))
    assert [d.msg for d in _pipeline_error(info.value).details] == [
        "job 'b' reads 'a.y' but job 'a' has no output 'y' (its outputs: x)",
        "job 'b' reads 'nowhere', which is neither a dataset nor a job output",
        "job 'b' reads 'a', which is neither a dataset nor a job output "
        "(to read a job's output, write job.output)",
        "job 'b' runs after unknown job 'z'",
    ]
    assert [d.loc for d in _pipeline_error(info.value).details] == [
        ("jobs", 1, "inputs", 0), ("jobs", 1, "inputs", 1), ("jobs", 1, "inputs", 2),
        ("jobs", 1, "after", 0),
    ]


def test_duplicate_job_names_are_errors() -> None:
    with pytest.raises(ValidationError) as info:
        pipeline(job("a"), job("a"))
    assert _pipeline_error(info.value).details == [
        ErrorDetail("duplicate job name 'a'", loc=("jobs", 1, "name"))
    ]


def test_jobs_may_be_given_keyed_by_name() -> None:
    p = Pipeline.model_validate(
        {"jobs": {"a": {"command": "x", "gpu_types": {"T4": "2h"}}}, "datasets": {"d": {}}}
    )
    assert p.jobs[0].name == "a" and p.jobs[0].gpu_types == {"T4": 2.0}
    assert p.datasets[0] == Dataset(name="d")


def test_sizes_and_durations_are_stored_as_numbers_and_round_trip() -> None:
    j = job("a", gpu_types={"H100": "1h30m"}, outputs={"o": "1.5TB"})
    assert j.gpu_types == {"H100": 1.5} and j.outputs == {"o": 1500.0}
    p = pipeline(j, job("b", inputs=["a.o"]))
    assert Pipeline.model_validate_json(p.model_dump_json()) == p


def test_models_are_frozen_and_forbid_unknown_fields() -> None:
    j = job("a")
    with pytest.raises(ValidationError):
        j.command = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError) as info:
        Job.model_validate({"name": "a", "command": "x", "gpu_types": {"T4": 1}, "gpus": 2})
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_zero_runtime_and_zero_gpus_are_rejected() -> None:
    with pytest.raises(ValidationError, match="run time on T4 must be positive"):
        job("a", gpu_types={"T4": 0})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        Job.model_validate({"name": "a", "command": "x", "gpu_types": {"T4": 1},
                            "resources": {"gpus": 0}})


def test_location_jurisdictions_follow_the_country() -> None:
    assert Location(provider="onprem", region="fra", country="DE").jurisdictions == {
        "DE", "EU", "EEA"}
    assert Location(provider="azure", region="norwayeast", country="NO").jurisdictions == {
        "NO", "EEA"}
    assert Location(provider="aws", region="eu-west-2", country="GB").jurisdictions == {"GB"}
    assert Location(provider="aws", region="x", country="US", jurisdictions={"US"}).key == "aws:x"
