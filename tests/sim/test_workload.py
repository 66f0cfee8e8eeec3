"""Workloads: the packaged traces load exactly, generators have the statistics they promise,
transformations keep their contracts, and bad input is reported with file, line and column."""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections import Counter
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from placer.errors import ConfigError, ErrorDetail
from placer.sim.jobs import SimDataset, Workload
from placer.sim.workload import (
    ITP_CLUSTERS,
    PHILLY_GPU_MIX,
    csv_trace,
    itp_trace,
    parse_trace_spec,
    philly_runtimes_h,
    pipelines,
    synthetic,
    window,
    with_deadlines,
    with_estimate_noise,
    with_residency,
)

EU = SimDataset("eu-pii", "onprem:fra-dc1", 200.0, {"residency": "EU", "classification": "pii"})
EU_CLOUD = SimDataset("eu-logs", "aws:eu-central-1", 50.0, {"residency": "EU"})
OPEN = SimDataset("open", "aws:us-east-1", 100.0, {"residency": "none"})


def _raw_rows(cluster: str) -> list[dict[str, str]]:
    """The packaged CSV read independently of the module under test."""
    data = files("placer").joinpath("sim", "data", "itp", f"{cluster}.csv.gz").read_bytes()
    return list(csv.DictReader(io.StringIO(gzip.decompress(data).decode())))


# -- ITP -------------------------------------------------------------------------------------


def test_cluster04_has_every_job_and_the_raw_gpu_hours() -> None:
    wl = itp_trace("cluster04")
    rows = _raw_rows("cluster04")
    assert len(wl.jobs) == 15_802
    raw_gpu_hours = sum(int(r["num_gpu"]) * int(r["duration"]) for r in rows) / 3600
    assert wl.gpu_hours == pytest.approx(raw_gpu_hours, rel=1e-12)
    assert all(j.estimate_h == j.runtime_h and j.pipeline == -1 and not j.deps for j in wl.jobs)
    assert "elasticflow-traces" in wl.source


def test_all_ten_clusters_add_up_to_the_published_job_count() -> None:
    assert sum(len(itp_trace(c).jobs) for c in ITP_CLUSTERS) == 69_351


def test_arrivals_start_at_zero_sorted_and_ties_keep_file_order() -> None:
    wl = itp_trace("cluster07")
    arrivals = [j.arrival_h for j in wl.jobs]
    assert arrivals[0] == 0.0
    assert arrivals == sorted(arrivals)
    rows = _raw_rows("cluster07")
    # The file is sorted by submission time, so a stable sort keeps its order exactly.
    assert [j.name for j in wl.jobs] == [r["job_id"] for r in rows]
    t0 = int(rows[0]["submission_time"])
    assert wl.jobs[-1].arrival_h == (int(rows[-1]["submission_time"]) - t0) / 3600


def test_cluster_names_and_limit() -> None:
    first = itp_trace("4", limit=10)
    assert len(first.jobs) == 10
    assert first.jobs == itp_trace("04", limit=10).jobs == itp_trace("cluster04").jobs[:10]
    assert parse_trace_spec("itp:07").jobs == itp_trace("cluster07").jobs
    with pytest.raises(ConfigError) as err:
        itp_trace("4", limit=0)
    assert err.value.details == [ErrorDetail("must be >= 1, got 0", field="limit")]


@pytest.mark.parametrize("name", ["cluster11", "0", "c04", "itp"])
def test_unknown_cluster_lists_the_valid_ones(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        itp_trace(name)
    (detail,) = err.value.details
    assert detail.field == "cluster"
    assert detail.msg == (
        f"unknown ITP cluster {name!r}; valid: {', '.join(ITP_CLUSTERS)} (or 1-10)"
    )


def test_philly_runtimes() -> None:
    h = philly_runtimes_h()
    assert h.shape == (83_154,)
    assert h.mean() * 3600 == pytest.approx(14_613.3, abs=0.1)  # the README's figure
    assert not h.flags.writeable


# -- user CSV --------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.csv"
    path.write_text(text)
    return path


def test_csv_trace_sorts_rebases_and_names_jobs(tmp_path: Path) -> None:
    path = _write(tmp_path, "num_gpu,duration,submission_time,user\n2,3600,7200,a\n1,1800,3600,b\n")
    wl = csv_trace(path)
    assert [(j.name, j.arrival_h, j.runtime_h, j.gpus) for j in wl.jobs] == [
        ("job1", 0.0, 0.5, 1),
        ("job0", 1.0, 1.0, 2),
    ]
    assert parse_trace_spec(f"csv:{path}").jobs == wl.jobs


def test_csv_ties_keep_file_order(tmp_path: Path) -> None:
    times = np.random.default_rng(0).integers(0, 3, 3000).tolist()
    rows = "".join(f"j{i},{t},60,1\n" for i, t in enumerate(times))
    wl = csv_trace(_write(tmp_path, "job_id,submission_time,duration,num_gpu\n" + rows))
    expected = sorted(range(len(times)), key=lambda i: times[i])  # sorted() is stable
    assert [j.name for j in wl.jobs] == [f"j{i}" for i in expected]


def test_csv_errors_name_file_line_and_column(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "job_id,submission_time,duration,num_gpu\n"
        "a,0,60,1\n"
        "b,ten,60,1\n"
        "c,5,0,1.5\n"
        "\n"
        "a,9,60\n"
        "a,9,60,2\n",
    )
    with pytest.raises(ConfigError) as err:
        csv_trace(path)
    f = str(path)
    assert err.value.details == [
        ErrorDetail("not a number: 'ten'", f, 3, "submission_time"),
        ErrorDetail("must be > 0, got 0", f, 4, "duration"),
        ErrorDetail("must be an integer >= 1, got '1.5'", f, 4, "num_gpu"),
        ErrorDetail("expected 4 fields, found 3", f, 6),
        ErrorDetail("duplicate job_id 'a' (first on line 2)", f, 7, "job_id"),
    ]
    assert f"{f}:3: submission_time: not a number" in str(err.value)


def test_csv_missing_column_and_unreadable_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "submission_time,duration\n0,60\n")
    with pytest.raises(ConfigError) as err:
        csv_trace(path)
    (detail,) = err.value.details
    assert (detail.file, detail.line, detail.field) == (str(path), 1, "num_gpu")
    with pytest.raises(ConfigError) as err:
        csv_trace(tmp_path / "absent.csv")
    assert err.value.details[0].file == str(tmp_path / "absent.csv")


# -- generators ------------------------------------------------------------------------------


def test_synthetic_rate_and_gpu_mix() -> None:
    wl = synthetic(hours=2000, rate_per_h=30, seed=3)
    n = len(wl.jobs)
    assert n / 2000 == pytest.approx(30, rel=0.03)
    shares = Counter(j.gpus for j in wl.jobs)
    for gpus, p in PHILLY_GPU_MIX.items():
        assert shares[gpus] / n == pytest.approx(p, abs=0.01)
    assert set(shares) == set(PHILLY_GPU_MIX)
    mean = sum(j.runtime_h for j in wl.jobs) / n
    assert mean == pytest.approx(4.0, rel=0.03)
    assert all(0 <= j.arrival_h < 2000 for j in wl.jobs)


def test_gamma_arrivals_have_the_requested_burstiness() -> None:
    wl = synthetic(hours=5000, rate_per_h=10, arrivals="gamma", cv=4.0, seed=1)
    gaps = np.diff([0.0] + [j.arrival_h for j in wl.jobs])
    assert gaps.std() / gaps.mean() == pytest.approx(4.0, rel=0.1)
    assert len(wl.jobs) / 5000 == pytest.approx(10, rel=0.1)
    poisson = synthetic(hours=5000, rate_per_h=10, seed=1)
    gaps = np.diff([0.0] + [j.arrival_h for j in poisson.jobs])
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.05)


def test_empirical_runtimes_and_clip() -> None:
    philly = synthetic(hours=200, rate_per_h=20, runtime="philly", max_runtime_h=10.0, seed=2)
    runs = [j.runtime_h for j in philly.jobs]
    assert min(runs) >= 30 / 3600 and max(runs) <= 10.0
    assert min(runs) == 30 / 3600  # Philly's zero run times are clipped up
    itp = synthetic(hours=200, rate_per_h=20, runtime="itp", seed=2)
    assert min(j.runtime_h for j in itp.jobs) >= 600 / 3600  # ITP has no job under 600 s


def test_same_seed_same_workload_different_seed_different() -> None:
    def build(seed: int) -> list[Workload]:
        base = synthetic(hours=20, rate_per_h=10, arrivals="gamma", cv=2, seed=seed)
        dags = pipelines(count=20, rate_per_h=2, seed=seed)
        return [
            base,
            dags,
            with_residency(dags, share=0.5, restricted=[EU], unrestricted=[OPEN], seed=seed),
            with_estimate_noise(base, error=0.5, seed=seed),
            with_deadlines(base, slack=2, spread=1, share=0.5, seed=seed),
        ]

    for a, b, c in zip(build(7), build(7), build(8), strict=True):
        assert a == b
        assert a.jobs != c.jobs


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"hours": 0}, "hours"),
        ({"cv": 3.0}, "cv"),  # Poisson has cv 1
        ({"arrivals": "uniform"}, "arrivals"),
        ({"gpu_mix": {1: 0.5, 2: 0.4}}, "gpu_mix"),
        ({"runtime": "weibull"}, "runtime"),
        ({"min_runtime_h": 0}, "min_runtime_h"),
    ],
)
def test_synthetic_rejects_bad_parameters(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"hours": 1.0, "rate_per_h": 5.0, **kwargs}
    with pytest.raises(ConfigError) as err:
        synthetic(**args)  # type: ignore[arg-type]
    assert [d.field for d in err.value.details] == [field]


def test_pipelines_are_dags_with_shared_arrival() -> None:
    wl = pipelines(count=60, rate_per_h=3, shape="mixed", sweep_width=3, seed=4)
    by_pipeline: dict[int, list[int]] = {}
    for j in wl.jobs:
        by_pipeline.setdefault(j.pipeline, []).append(j.id)
        assert all(d < j.id and wl.jobs[d].pipeline == j.pipeline for d in j.deps)
        assert wl.jobs[by_pipeline[j.pipeline][0]].arrival_h == j.arrival_h
    assert sorted(by_pipeline) == list(range(60))
    sizes = Counter(len(ids) for ids in by_pipeline.values())
    assert set(sizes) == {3, 5} and sizes[3] > 10 and sizes[5] > 10  # chains and 3-wide sweeps
    for ids in by_pipeline.values():
        first, *rest = (wl.jobs[i] for i in ids)
        assert first.reads == ("corpus",) and not first.deps and 10 <= first.output_gb <= 1000
        assert all(not j.reads and j.deps for j in rest)
        last = rest[-1]
        assert set(last.deps) == set(ids[1:-1])  # eval / select waits for every train
    arrivals = [wl.jobs[ids[0]].arrival_h for ids in by_pipeline.values()]
    assert arrivals == sorted(arrivals)


def test_sweep_trials_share_gpus_and_chain_shape() -> None:
    sweep = pipelines(count=5, rate_per_h=1, shape="sweep", sweep_width=4, seed=0)
    assert len(sweep.jobs) == 5 * 6
    trains = [j for j in sweep.jobs if "/train" in j.name]
    for p in range(5):
        assert len({j.gpus for j in trains if j.pipeline == p}) == 1
    chain = pipelines(count=5, rate_per_h=1, shape="chain", seed=0)
    assert [j.name for j in chain.jobs[:3]] == ["p0/prep", "p0/train", "p0/eval"]


# -- transformations -------------------------------------------------------------------------


def test_residency_share_is_exact_for_independent_jobs() -> None:
    wl = with_residency(
        itp_trace(limit=1000), share=0.3, restricted=[EU, EU_CLOUD], unrestricted=[OPEN], seed=5
    )
    reads = Counter(j.reads for j in wl.jobs)
    assert reads[("eu-pii",)] + reads[("eu-logs",)] == 300
    assert reads[("open",)] == 700
    assert reads[("eu-pii",)] > 100 and reads[("eu-logs",)] > 100
    assert set(wl.datasets) == {"eu-pii", "eu-logs", "open"}


def test_residency_moves_whole_pipelines() -> None:
    dags = pipelines(count=5, rate_per_h=2, seed=1)
    wl = with_residency(dags, share=0.5, restricted=[EU], unrestricted=[OPEN], seed=1)
    restricted = {j.pipeline for j in wl.jobs if j.reads == ("eu-pii",)}
    assert len(restricted) == 3  # half up: 2.5 -> 3 (Python's round() would give 2)
    for j in wl.jobs:
        is_first = j.id == min(k.id for k in wl.jobs if k.pipeline == j.pipeline)
        assert bool(j.reads) == is_first
    assert "corpus" not in wl.datasets
    with pytest.raises(ConfigError) as err:
        with_residency(dags, share=0.5, restricted=[], unrestricted=[OPEN])
    assert err.value.details[0].field == "restricted"


def test_estimate_noise_keeps_truth_and_bounds() -> None:
    base = itp_trace(limit=500)
    noisy = with_estimate_noise(base, error=0.4, seed=2)
    ratios = [n.estimate_h / b.runtime_h for n, b in zip(noisy.jobs, base.jobs, strict=True)]
    assert [n.runtime_h for n in noisy.jobs] == [b.runtime_h for b in base.jobs]
    assert 0.6 <= min(ratios) < 0.7 and 1.3 < max(ratios) <= 1.4
    logn = with_estimate_noise(base, error=1.0, seed=2, noise="lognormal")
    logs = np.log([j.estimate_h / j.runtime_h for j in logn.jobs])
    assert logs.std() == pytest.approx(math.log(2), rel=0.1)
    with pytest.raises(ConfigError):
        with_estimate_noise(base, error=1.0)


def test_deadlines_follow_the_critical_path() -> None:
    dags = pipelines(count=10, rate_per_h=2, shape="sweep", sweep_width=3, seed=3)
    wl = with_deadlines(dags, slack=2.0)
    for p in range(10):
        prep, *trains, select = (j for j in wl.jobs if j.pipeline == p)
        path = prep.runtime_h + max(t.runtime_h for t in trains) + select.runtime_h
        expected = prep.arrival_h + 2.0 * path
        assert all(j.deadline_h == pytest.approx(expected) for j in (prep, *trains, select))
    solo = with_deadlines(itp_trace(limit=100), slack=1.5, share=0.25, seed=1)
    with_deadline = [j for j in solo.jobs if j.deadline_h is not None]
    assert len(with_deadline) == 25
    assert all(j.deadline_h == j.arrival_h + 1.5 * j.runtime_h for j in with_deadline)


def test_window_renumbers_and_rebases() -> None:
    dags = with_deadlines(pipelines(count=40, rate_per_h=4, seed=6), slack=3)
    cut = window(dags, 2.0, 3.0)
    kept = [j for j in dags.jobs if 2.0 <= j.arrival_h < 5.0]
    assert len(cut.jobs) == len(kept) > 0
    assert [j.id for j in cut.jobs] == list(range(len(kept)))
    assert sorted({j.pipeline for j in cut.jobs}) == list(range(len({j.pipeline for j in kept})))
    for new, old in zip(cut.jobs, kept, strict=True):
        assert new.arrival_h == pytest.approx(old.arrival_h - 2.0)
        assert new.deadline_h == pytest.approx(old.deadline_h - 2.0)  # type: ignore[operator]
        assert [cut.jobs[d].name for d in new.deps] == [dags.jobs[d].name for d in old.deps]
    assert window(dags, 1000.0, 1.0).jobs == ()


# -- --trace ---------------------------------------------------------------------------------


def test_parse_synthetic_and_pipelines_specs() -> None:
    wl = parse_trace_spec("synthetic:rate=32,hours=3,seed=1")
    assert wl == synthetic(hours=3, rate_per_h=32, seed=1)
    mixed = parse_trace_spec("synthetic:rate=8,hours=5,arrivals=gamma,cv=2,gpu_mix=1:0.5/8:0.5")
    assert {j.gpus for j in mixed.jobs} == {1, 8}
    dags = parse_trace_spec("pipelines:count=4,rate=2,shape=chain,seed=2")
    assert dags == pipelines(count=4, rate_per_h=2, shape="chain", seed=2)


@pytest.mark.parametrize(
    ("spec", "start"),
    [
        ("synthetic:rate=32", "'synthetic:rate=32': needs hours"),
        ("synthetic:rate=32,hours=3,speed=2", "'synthetic:rate=32,hours=3,speed=2': unknown"),
        ("synthetic:rate=fast,hours=3", "'synthetic:rate=fast,hours=3': bad value for rate"),
        ("helios:venus", "unknown trace 'helios:venus'"),
        ("csv:", "'csv:': csv needs a path"),
    ],
)
def test_bad_specs(spec: str, start: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_trace_spec(spec)
    (detail,) = err.value.details
    assert detail.field == "trace"
    assert detail.msg.startswith(start)
