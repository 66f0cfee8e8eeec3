"""The Ray backend's pure parts: the submission it builds, token lookup, error mapping.

No cluster and no Ray needed: the SDK client is a fake injected through ``client_factory``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from placer.backends import ComputeBackend, Handle
from placer.errors import BackendError, CredentialsError, SiteUnreachableError
from placer.models import Cluster, Job, JobPlacement, Site

placer_ray = pytest.importorskip("placer_ray")
RayJobsBackend = placer_ray.RayJobsBackend

TOKEN = "s3cr3t-token-value-0123456789"


def site(**cluster: Any) -> Site:
    return Site(name="eu", kind="cloud", location="aws:eu-central-1",
                cluster=Cluster(**{"address": "http://127.0.0.1:1/", **cluster}))


def placement(gpu: str = "A100-80GB", gpus: int = 2) -> JobPlacement:
    return JobPlacement(site="eu", location="aws:eu-central-1", gpu=gpu, gpus=gpus, nodes=1,
                        spot=False, start_h=0, end_h=1, cost_usd=1, compute_usd=1,
                        transfer_usd=0, transfer_h=0)


JOB = Job(name="train", command="python train.py", gpu_types={"A100-80GB": 1},
          runtime_env={"pip": ["torch==2.5.1"], "env_vars": {"A": "job", "B": "job"}})


class FakeCluster:
    """The cluster's state, which outlives any one client (a reconnect sees the same jobs)."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.fail: BaseException | None = None
        self.fail_times = 10**9  # how many more calls raise ``fail``


class FakeClient:
    """Records calls; raises what Ray's SDK raises for the scripted cases."""

    def __init__(self, cluster: FakeCluster, address: str,
                 headers: dict[str, str] | None = None, verify: bool = True) -> None:
        self.cluster, self.address, self.headers, self.verify = cluster, address, headers, verify
        self.jobs = cluster.jobs

    def _maybe_fail(self) -> None:
        if self.cluster.fail is not None and self.cluster.fail_times > 0:
            self.cluster.fail_times -= 1
            raise self.cluster.fail

    def submit_job(self, **kw: Any) -> str:
        self._maybe_fail()
        sid = kw["submission_id"]
        if sid in self.jobs:
            raise RuntimeError(f"Request failed with status code 500: ValueError: Job with "
                               f"submission_id {sid} already exists.")
        self.jobs[sid] = kw
        return str(sid)

    def get_job_info(self, sid: str) -> SimpleNamespace:
        self._maybe_fail()
        if sid not in self.jobs:
            raise RuntimeError(f"Request failed with status code 404: Job {sid} does not exist.")
        return SimpleNamespace(**self.jobs[sid])


def backend(**cluster: Any) -> tuple[Any, list[FakeClient]]:
    made: list[FakeClient] = []
    state = FakeCluster()

    def factory(*a: Any, **kw: Any) -> FakeClient:
        made.append(FakeClient(state, *a, **kw))
        return made[-1]

    cluster.setdefault("options", {}).setdefault("confirm_down_s", "0")
    return RayJobsBackend(site(**cluster), client_factory=factory), made


def test_importing_the_backend_imports_no_sdk() -> None:
    import subprocess

    code = "import placer_ray, sys; print('ray' in sys.modules or 'requests' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": ":".join(sys.path)})
    assert out.stdout.strip() == "False"


def test_it_is_a_compute_backend() -> None:
    b, _ = backend(token_env="PLACER_T")
    assert isinstance(b, ComputeBackend) and b.name == "ray"


def test_the_request_pins_the_environment_gpu_type_and_metadata() -> None:
    b, _ = backend()
    env = {"B": "placer", "PLACER_RUN_ID": "r1", "PLACER_PLAN_HASH": "p", "PLACER_JOB": "train",
           "AWS_SECRET_ACCESS_KEY": "not-metadata"}
    assert b.submission_request(JOB, placement(), submission_id="r1-train-1", env=env) == {
        "entrypoint": "python train.py",
        "submission_id": "r1-train-1",
        "runtime_env": {"pip": ["torch==2.5.1"], "env_vars": {"A": "job", **env}},
        "metadata": {"placer_job": "train", "placer_site": "eu", "placer_gpu": "A100-80GB",
                     "placer_run_id": "r1", "placer_plan_hash": "p"},
        "entrypoint_resources": {"gpu_type:A100-80GB": 2.0},
        "entrypoint_num_gpus": 2,
    }


def test_an_image_becomes_image_uri_and_options_tune_gpu_requests() -> None:
    b, _ = backend(options={"entrypoint_num_gpus": "false", "gpu_resource_prefix": "acc:",
                            "accelerator_label": "true"})
    job = JOB.model_copy(update={"image": "ghcr.io/acme/train@sha256:" + "a" * 64,
                                 "runtime_env": None})
    req = b.submission_request(job, placement("H100", 8), submission_id="s", env={})
    assert req["runtime_env"] == {"image_uri": "ghcr.io/acme/train@sha256:" + "a" * 64}
    assert req["entrypoint_resources"] == {"acc:H100": 8.0}
    assert req["entrypoint_label_selector"] == {"ray.io/accelerator-type": "H100"}
    assert "entrypoint_num_gpus" not in req


def test_an_image_with_fields_ray_cannot_combine_is_refused() -> None:
    b, _ = backend()
    job = JOB.model_copy(update={"image": "img@sha256:" + "b" * 64})
    with pytest.raises(BackendError, match=r"only config and env_vars beside image_uri"):
        b.submission_request(job, placement(), submission_id="s", env={})


def test_a_cpu_step_asks_for_no_gpu_resources() -> None:
    b, _ = backend()
    req = b.submission_request(JOB, placement("CPU", 0), submission_id="s", env={})
    assert "entrypoint_resources" not in req and "entrypoint_num_gpus" not in req


def test_the_token_goes_only_into_the_authorization_header(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACER_T", TOKEN)
    b, made = backend(token_env="PLACER_T")
    h = b.submit(JOB, placement(), submission_id="s1", env={"PLACER_RUN_ID": "r"})
    assert h == Handle("ray", "eu", "s1")
    (client,) = made
    assert client.address == "http://127.0.0.1:1"
    assert client.headers == {"Authorization": f"Bearer {TOKEN}"}
    assert TOKEN not in repr(client.jobs) and TOKEN not in repr(b)


def test_submitting_an_existing_id_adopts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACER_T", TOKEN)
    b, made = backend(token_env="PLACER_T")
    assert b.submit(JOB, placement(), submission_id="s1", env={}) == b.submit(
        JOB, placement(), submission_id="s1", env={})
    assert list(made[0].jobs) == ["s1"]
    assert b.find("s1") == Handle("ray", "eu", "s1") and b.find("s2") is None


def test_an_existing_id_of_another_job_is_not_adopted() -> None:
    b, _ = backend()
    b.submit(JOB, placement(), submission_id="s1", env={})
    other = JOB.model_copy(update={"name": "evaluate"})
    with pytest.raises(BackendError) as info:
        b.submit(other, placement(), submission_id="s1", env={})
    assert str(info.value) == "eu: submission id 's1' already names job 'train', not 'evaluate'"


def test_the_token_is_never_passed_to_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACER_T", TOKEN)
    b, made = backend(token_env="PLACER_T")
    with pytest.raises(BackendError) as info:
        b.submit(JOB, placement(), submission_id="s1", env={"X": TOKEN})
    assert TOKEN not in str(info.value) and made[0].jobs == {}


def test_token_file_then_ray_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    f = tmp_path / "tok"
    f.write_text(TOKEN + "\n")
    b, made = backend(token_file=str(f))
    b.find("x")
    assert made[0].headers == {"Authorization": f"Bearer {TOKEN}"}
    monkeypatch.setenv("RAY_AUTH_TOKEN", "from-ray-env")
    b, made = backend()
    b.find("x")
    assert made[0].headers == {"Authorization": "Bearer from-ray-env"}


def test_an_empty_token_file_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "tok"
    f.write_text("\n")
    b, _ = backend(token_file=str(f))
    with pytest.raises(CredentialsError, match="is empty"):
        b.find("x")


@pytest.mark.parametrize(("raised", "kind", "words"), [
    (ConnectionError("Failed to connect to Ray at address: http://127.0.0.1:1."),
     SiteUnreachableError, "unreachable"),
    (RuntimeError(f"Request failed with status code 403: Forbidden (Bearer {TOKEN})"),
     CredentialsError, "refused the credentials"),
    (RuntimeError(f"Request failed with status code 500: boom {TOKEN}"), BackendError, "boom"),
])
def test_sdk_errors_map_to_placer_errors_with_the_token_masked(
        monkeypatch: pytest.MonkeyPatch, raised: BaseException, kind: type[BaseException],
        words: str) -> None:
    import traceback

    monkeypatch.setenv("PLACER_T", TOKEN)
    b, made = backend(token_env="PLACER_T")
    b.find("warm-up")
    made[0].cluster.fail = raised
    with pytest.raises(BackendError) as info:
        b.submit(JOB, placement(), submission_id="s1", env={})
    assert type(info.value) is kind and words in str(info.value)
    assert TOKEN not in "".join(traceback.format_exception(info.value))


def test_a_site_is_declared_down_only_if_a_second_try_fails_too(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLACER_T", TOKEN)
    b, made = backend(token_env="PLACER_T")
    b.submit(JOB, placement(), submission_id="s1", env={})
    made[0].cluster.fail, made[0].cluster.fail_times = ConnectionError("refused"), 1
    assert b.find("s1") == Handle("ray", "eu", "s1")  # a blip: the reconnect works
    assert len(made) == 2
    made[0].cluster.fail_times = 2
    with pytest.raises(SiteUnreachableError):
        b.find("s1")


def test_the_ray_entry_point_is_this_backend() -> None:
    from placer.backends import available_backends, load_backend

    if "ray" not in available_backends():
        pytest.skip("placer is not installed with the ray entry point (pip install -e .)")
    assert load_backend("ray") is RayJobsBackend


def test_a_site_without_an_address_is_refused() -> None:
    with pytest.raises(BackendError, match="no cluster address"):
        RayJobsBackend(Site(name="eu", kind="cloud", location="aws:eu-central-1"))
