"""The Ray Jobs backend against two real local Ray clusters with token authentication on."""

from __future__ import annotations

import itertools
import logging
import traceback
from collections.abc import Callable, Iterator

import pytest

from placer.backends import TERMINAL_STATES, ComputeBackend, Handle
from placer.errors import BackendError, SiteUnreachableError
from placer.models import Cluster, Job, JobPlacement, Site
from tests.backends.conftest_ray import ray_clusters  # noqa: F401  (session fixture)
from tests.backends.contract import ComputeBackendContract
from tests.backends.ray_clusters import GPU, ClusterPair, RayCluster, require_ray

_ids = itertools.count()
ENV = {"PLACER_RUN_ID": "run-7", "PLACER_PLAN_HASH": "plan-abc", "PLACER_POLICY_HASH": "pol-def",
       "PLACER_JOB": "hello"}
HELLO = Job(name="hello", gpu_types={GPU: 0.1}, command=(
    "python -c \"import os; print('hello from placer', os.environ.get('CUDA_VISIBLE_DEVICES'))\""))
SLEEPY = Job(name="sleepy", command="sleep 60", gpu_types={GPU: 1})


def _sid() -> str:
    return f"placer-test-{next(_ids)}"


def _placement(site: str, gpus: int = 1) -> JobPlacement:
    return JobPlacement(site=site, location="onprem:x", gpu=GPU, gpus=gpus, nodes=0, spot=False,
                        start_h=0, end_h=0.1, cost_usd=0, compute_usd=0, transfer_usd=0,
                        transfer_h=0)


def _backend(cluster: RayCluster, name: str | None = None, **options: str) -> ComputeBackend:
    from placer_ray import RayJobsBackend

    return RayJobsBackend(cluster.site(name, **options))


@pytest.fixture
def pair(ray_clusters: ClusterPair) -> ClusterPair:  # noqa: F811
    return ray_clusters


# -- against real clusters --------------------------------------------------------------------


@pytest.mark.parametrize("which", ["onprem", "cloud"])
def test_a_job_runs_on_each_cluster_with_its_gpu_type_and_metadata(pair: ClusterPair,
                                                                    which: str) -> None:
    cluster: RayCluster = getattr(pair, which)
    backend = _backend(cluster)
    sid = _sid()
    h = backend.submit(HELLO, _placement(cluster.name), submission_id=sid, env=ENV)
    assert h == Handle("ray", cluster.name, sid)
    assert backend.wait(h, timeout_s=120) == "SUCCEEDED"  # type: ignore[attr-defined]
    assert "hello from placer" in backend.logs(h)
    info = cluster.client().get_job_info(sid)
    assert info.metadata == {"placer_job": "hello", "placer_site": cluster.name,
                             "placer_gpu": GPU, "placer_run_id": "run-7",
                             "placer_plan_hash": "plan-abc", "placer_policy_hash": "pol-def"}
    assert info.runtime_env["env_vars"] == ENV
    # entrypoint_num_gpus=1 reserved one (logical) GPU: Ray pinned the entrypoint to it.
    assert "hello from placer 0" in backend.logs(h)


def test_a_gpu_type_the_cluster_lacks_keeps_the_job_pending(pair: ClusterPair) -> None:
    import time

    backend = _backend(pair.onprem)
    h = backend.submit(HELLO, _placement("onprem").model_copy(update={"gpu": "H100-80GB"}),
                       submission_id=_sid(), env=ENV)
    time.sleep(3)
    assert backend.status(h) == "PENDING"  # no node advertises gpu_type:H100-80GB
    backend.cancel(h)  # accepted; but Ray cannot stop a job whose entrypoint never started
    # (ray-project/ray#58353): it stays PENDING until Ray's job start timeout fails it.
    assert backend.status(h) in ("PENDING", "STOPPED")


def test_the_same_submission_id_twice_starts_one_ray_job(pair: ClusterPair) -> None:
    backend = _backend(pair.onprem)
    sid = _sid()
    first = backend.submit(HELLO, _placement("onprem"), submission_id=sid, env=ENV)
    again = _backend(pair.onprem).submit(HELLO, _placement("onprem"), submission_id=sid, env=ENV)
    assert first == again
    jobs = [j for j in pair.onprem.client().list_jobs() if j.submission_id == sid]
    assert len(jobs) == 1


def test_find_adopts_a_job_from_a_new_backend_and_misses_unknown_ids(pair: ClusterPair) -> None:
    sid = _sid()
    h = _backend(pair.cloud).submit(HELLO, _placement("cloud"), submission_id=sid, env=ENV)
    fresh = _backend(pair.cloud)
    assert fresh.find(sid) == h
    assert fresh.find(sid + "-never") is None
    assert _backend(pair.onprem).find(sid) is None  # ids are per cluster


def test_follow_yields_the_log_until_the_job_ends(pair: ClusterPair) -> None:
    backend = _backend(pair.onprem)
    h = backend.submit(HELLO, _placement("onprem"), submission_id=_sid(), env=ENV)
    text = "".join(backend.follow(h, poll_s=0.3, timeout_s=120))  # type: ignore[attr-defined]
    assert "hello from placer" in text
    assert backend.status(h) in TERMINAL_STATES


def test_cancel_stops_a_running_job(pair: ClusterPair) -> None:
    backend = _backend(pair.cloud)
    h = backend.submit(SLEEPY, _placement("cloud"), submission_id=_sid(), env=ENV)
    for _ in range(240):
        if backend.status(h) == "RUNNING":
            break
        import time

        time.sleep(0.25)
    backend.cancel(h)
    assert backend.wait(h, timeout_s=60) == "STOPPED"  # type: ignore[attr-defined]
    backend.cancel(h)  # idempotent
    backend.cancel(Handle("ray", "cloud", "placer-never-submitted"))  # nothing to stop


def test_a_wrong_token_is_a_clear_error_that_names_no_token(
        pair: ClusterPair, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "wrong-token-" + pair.onprem.token[:6] + "zz"
    monkeypatch.setenv("PLACER_TEST_WRONG_TOKEN", wrong)
    site = Site(name="onprem", kind="onprem", location="onprem:x", country="DE",
                pools=pair.onprem.site().pools,
                cluster=Cluster(address=pair.onprem.address, token_env="PLACER_TEST_WRONG_TOKEN"))
    from placer_ray import RayJobsBackend

    with pytest.raises(BackendError) as info:
        RayJobsBackend(site).find("anything")
    assert not isinstance(info.value, SiteUnreachableError)
    text = "".join(traceback.format_exception(info.value))
    assert "refused the credentials" in str(info.value)
    assert wrong not in text and pair.onprem.token not in text


def test_a_missing_token_variable_is_named_not_guessed(
        pair: ClusterPair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLACER_TEST_UNSET", raising=False)
    site = pair.onprem.site()
    site = site.model_copy(update={"cluster": Cluster(address=pair.onprem.address,
                                                      token_env="PLACER_TEST_UNSET")})
    from placer_ray import RayJobsBackend

    with pytest.raises(BackendError) as info:
        RayJobsBackend(site).find("x")
    assert str(info.value) == (
        "onprem: environment variable PLACER_TEST_UNSET (token_env) is not set")


def test_a_token_file_works(pair: ClusterPair, tmp_path: object) -> None:
    from pathlib import Path

    from placer_ray import RayJobsBackend

    path = Path(str(tmp_path)) / "token"
    path.write_text(pair.cloud.token + "\n")
    site = pair.cloud.site().model_copy(update={
        "cluster": Cluster(address=pair.cloud.address, token_file=str(path))})
    assert RayJobsBackend(site).find("placer-never") is None


def test_an_address_where_nothing_answers_is_site_unreachable() -> None:
    require_ray()
    from tests.backends.ray_clusters import _free_ports

    site = Site(name="gone", kind="cloud", location="aws:eu-central-1",
                cluster=Cluster(address=f"http://127.0.0.1:{_free_ports(1)[0]}"))
    from placer_ray import RayJobsBackend

    with pytest.raises(SiteUnreachableError) as info:
        RayJobsBackend(site).status(Handle("ray", "gone", "x"))
    assert info.value.site == "gone"


def test_the_token_appears_in_no_log_error_or_metadata(
        pair: ClusterPair, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    cluster = pair.onprem
    backend = _backend(cluster)
    errors: list[str] = []
    sid = _sid()
    h = backend.submit(HELLO, _placement("onprem"), submission_id=sid, env=ENV)
    backend.submit(HELLO, _placement("onprem"), submission_id=sid, env=ENV)  # the adopt path
    backend.wait(h, timeout_s=120)  # type: ignore[attr-defined]
    logs = backend.logs(h)
    for call in (lambda: backend.status(Handle("ray", "onprem", "placer-missing")),
                 lambda: backend.submit(HELLO, _placement("onprem"), submission_id=sid,
                                        env={"LEAK": cluster.token})):
        try:
            call()
        except BackendError as exc:
            errors.append("".join(traceback.format_exception(exc)))
    assert len(errors) == 2
    info = cluster.client().get_job_info(sid)
    out, err = capfd.readouterr()
    haystacks = {"log records": caplog.text, "errors": "\n".join(errors), "job logs": logs,
                 "metadata": repr(info.metadata), "job info": repr(info),
                 "stdout/stderr": out + err, "repr": repr(backend)}
    for where, text in haystacks.items():
        assert cluster.token not in text, where


# -- the shared contract, on the "cloud" cluster (which take_down stops and then restarts) ------


class TestRayJobsBackendContract(ComputeBackendContract):
    site = "contract-site"

    @pytest.fixture
    def sid(self) -> str:
        return _sid()

    @pytest.fixture
    def backend(self, pair: ClusterPair) -> ComputeBackend:
        return _backend(pair.cloud, self.site)

    @pytest.fixture
    def reopen(self, pair: ClusterPair) -> Callable[[], ComputeBackend]:
        cluster = pair.cloud
        return lambda: _backend(cluster, self.site)

    @pytest.fixture
    def take_down(self, pair: ClusterPair) -> Iterator[Callable[[], None]]:
        yield pair.cloud.stop
        from tests.backends.ray_clusters import shared_clusters

        shared_clusters()  # bring the site back for later tests

    @pytest.fixture
    def sleep(self) -> Callable[[], None]:
        import time

        return lambda: time.sleep(0.25)
