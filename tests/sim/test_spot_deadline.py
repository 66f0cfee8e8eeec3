"""One job under a deadline on spot or on-demand (placer.sim.spot_deadline): each policy on
hand-built traces with bills worked out by hand, the paper's guarantee as a property, bounds
and monotonicity of the bill, placer's plan-time choice against its own cost model, seeds,
and the documentation's examples."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from placer.catalog import SpotStats, spot_stats
from placer.errors import ConfigError, SimulationError
from placer.pricing import spot_run
from placer.sim.cloud import SpotTrace
from placer.sim.spot_deadline import (
    SPOT,
    DeadlineJob,
    DeadlinePolicy,
    Greedy,
    Mode,
    OnDemandOnly,
    PlacerOnline,
    PlacerPlan,
    PlacerSafetyNet,
    Prices,
    Run,
    Sweep,
    Tick,
    TraceSet,
    UniformProgress,
    location_of,
    placer_choice,
    run_sweep,
    sample_offsets,
    simulate,
    trace_stats,
)

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "simulator.md"

# Binary fractions throughout, so that the hand-worked bills are exact: ticks of 15 minutes,
# d = 0.25 h, one hour of work due in 2.5 hours; spot $1, on demand $3 per node-hour.
GAP_S = 900.0
JOB = DeadlineJob(work_h=1.0, deadline_h=2.5, changeover_h=0.25)
PRICES = Prices(on_demand=3.0, spot=1.0, source="test")
NEVER_PREEMPTED = SpotStats(
    location="test:x", gpu="V100", borrowed=False, availability=1.0, mtbf_h=math.inf,
    mttr_h=0.0, wait_h=0.0, p90_extra_h=((0.0, 0.0),), provisioning_h=0.0, restart_h=0.0,
    trace="hand")
"""Statistics under which placer's planner takes spot for JOB (expected run = the work)."""


def trace(*up: int, gap_s: float = GAP_S) -> SpotTrace:
    return SpotTrace("hand", gap_s, np.array(up, dtype=bool))


ALWAYS = trace(1)
NEVER = trace(0)
UP_THEN_DOWN = trace(1, 1, 1, *[0] * 60)  # up for 0.75 h, then gone for 15 h
DOWN_THEN_UP = trace(0, 0, 0, 0, *[1] * 60)  # up from 1 h on


def run(policy: DeadlinePolicy, tr: SpotTrace, job: DeadlineJob = JOB,
        prices: Prices = PRICES, **kw: float) -> Run:
    return simulate(policy, job, tr, prices=prices, **kw)


def lineup() -> list[DeadlinePolicy]:
    return [OnDemandOnly(), Greedy(), UniformProgress(), PlacerPlan("test:x", NEVER_PREEMPTED),
            PlacerSafetyNet("test:x", NEVER_PREEMPTED), PlacerOnline()]


# -- hand-worked runs -----------------------------------------------------------------------------


def test_on_demand_only_pays_the_work_and_one_changeover_whatever_the_trace() -> None:
    for tr in (ALWAYS, NEVER, UP_THEN_DOWN):
        r = run(OnDemandOnly(), tr)
        assert (r.cost_usd, r.finish_h, r.on_demand_h, r.spot_h, r.changeovers) == (
            3.75, 1.25, 1.25, 0.0, 1)
        assert r.met_deadline


@pytest.mark.parametrize("policy", lineup()[1:], ids=lambda p: p.name)
def test_always_available_runs_all_on_spot(policy: DeadlinePolicy) -> None:
    r = run(policy, ALWAYS)
    assert (r.cost_usd, r.finish_h, r.spot_h, r.on_demand_h, r.changeovers) == (
        1.25, 1.25, 1.25, 0.0, 1)


def test_never_available_greedy_waits_until_the_safety_net_then_goes_on_demand() -> None:
    # slack 1.5 h falls by 0.25 h a tick; below 2d = 0.5 h at t = 1.75: on demand from there,
    # finishing exactly at the deadline
    r = run(Greedy(), NEVER)
    assert (r.cost_usd, r.finish_h, r.on_demand_h, r.changeovers) == (3.75, 2.5, 1.25, 1)
    assert r.met_deadline


def test_never_available_uniform_progress_catches_up_on_demand_at_once() -> None:
    # at t = 0.25 the job is behind ep(t) = t / 2.5: on demand, and it never leaves (no spot)
    r = run(UniformProgress(), NEVER)
    assert (r.cost_usd, r.finish_h, r.on_demand_h, r.changeovers) == (3.75, 1.5, 1.25, 1)


def test_a_preemption_costs_a_second_changeover() -> None:
    # spot 0-0.75 h (0.25 changeover, 0.5 h of work), preempted, idle while slack >= 0.5 h,
    # on demand at 1.75 h: 0.25 changeover + the last 0.5 h, done at the deadline
    g = run(Greedy(), UP_THEN_DOWN)
    assert (g.cost_usd, g.finish_h, g.spot_h, g.on_demand_h, g.changeovers) == (
        0.75 + 3 * 0.75, 2.5, 0.75, 0.75, 2)
    # Uniform Progress is ahead of t / 2.5 until 1.5 h, then catches up on demand
    u = run(UniformProgress(), UP_THEN_DOWN)
    assert (u.cost_usd, u.finish_h, u.spot_h, u.on_demand_h, u.changeovers) == (
        3.0, 2.25, 0.75, 0.75, 2)
    # placer's online strategy falls back to on-demand at once
    o = run(PlacerOnline(), UP_THEN_DOWN)
    assert (o.cost_usd, o.finish_h, o.changeovers) == (3.0, 1.5, 2)
    # with the safety net placer's choice behaves as Greedy once it is on spot
    assert run(PlacerSafetyNet("test:x", NEVER_PREEMPTED), UP_THEN_DOWN) == g.model_copy(
        update={"policy": "placer+safety-net"})


def test_placer_waits_on_spot_past_the_deadline_and_the_miss_is_counted() -> None:
    # the planner chose spot; the executor has no fallback, so the job waits for capacity
    r = run(PlacerPlan("test:x", NEVER_PREEMPTED), UP_THEN_DOWN)
    assert not r.met_deadline and r.finish_h is None  # not back within 10 x work
    assert (r.cost_usd, r.spot_h, r.changeovers) == (0.75, 0.75, 1)
    # a trace that comes back: done late, on spot, after a second changeover
    back = trace(1, 1, 1, *[0] * 10, *[1] * 10)
    r = run(PlacerPlan("test:x", NEVER_PREEMPTED), back)
    assert (r.finish_h, r.cost_usd, r.changeovers, r.met_deadline) == (4.0, 1.5, 2, False)


def test_hysteresis_keeps_uniform_progress_on_demand_until_it_is_ahead() -> None:
    # on demand from 0.25 h; spot is back at 1 h but cp(1) = 0.5 < ep(1.5) = 0.6: stays;
    # at 1.25 h cp = 0.75 >= ep(1.75) = 0.7: spot, 0.25 changeover, the last 0.25 h of work
    u = run(UniformProgress(), DOWN_THEN_UP)
    assert (u.on_demand_h, u.spot_h, u.finish_h, u.cost_usd, u.changeovers) == (
        1.0, 0.5, 1.75, 3.5, 2)
    # Greedy waits and takes spot at 1 h, when the slack is exactly 2d
    g = run(Greedy(), DOWN_THEN_UP)
    assert (g.spot_h, g.finish_h, g.cost_usd, g.changeovers) == (1.25, 2.25, 1.25, 1)


def test_multi_node_jobs_need_every_node_and_pay_per_node() -> None:
    counts = SpotTrace("hand@4", GAP_S, np.array([True] * 8), counts=np.array([4, 4, 3, 3, 4, 4,
                                                                             4, 4]))
    job = JOB.model_copy(update={"nodes": 4})
    g = run(Greedy(), counts, job=job)
    # spot 0-0.5 (0.25 changeover, 0.25 work), 3 of 4 at 0.5 h: idle for two ticks (slack 1.25,
    # then 1.0), back at 1 h: changeover, the last 0.75 h; 4 nodes at $1
    assert (g.spot_h, g.finish_h, g.cost_usd, g.changeovers) == (1.5, 2.0, 6.0, 2)
    assert run(OnDemandOnly(), counts, job=job).cost_usd == 4 * 3.0 * 1.25


def test_offsets_start_on_a_tick_of_the_trace_and_wrap_around() -> None:
    tr = trace(0, 0, 1, 1, 1, 1, 1, 1)
    assert run(Greedy(), tr, offset_h=0.5).finish_h == 1.25  # up from the first tick
    assert run(Greedy(), tr, offset_h=0.6).finish_h == 1.25  # taken down to 0.5 h
    assert run(Greedy(), tr, offset_h=0.5 + 2.0).spot_h == 1.25  # wraps: the trace is 2 h


def test_a_policy_that_takes_absent_spot_is_refused() -> None:
    class Reckless(DeadlinePolicy):
        name = "reckless"

        def decide(self, tick: Tick) -> Mode:
            return SPOT

    with pytest.raises(SimulationError, match=re.escape("reckless chose spot at 0.000 h")):
        run(Reckless(), NEVER)


def test_jobs_read_durations_and_refuse_unknown_fields() -> None:
    assert DeadlineJob(work_h="48h", deadline_h="60h").slack_h == 12.0
    with pytest.raises(ValidationError) as exc:
        DeadlineJob(work_h=1, deadline_h=2, changover_h=0.1)  # type: ignore[call-arg]
    assert [(e["loc"], e["type"]) for e in exc.value.errors()] == [
        (("changover_h",), "extra_forbidden")]


def test_catalog_prices_are_the_papers() -> None:
    p = Prices.from_catalog()
    assert (p.on_demand, p.spot) == (3.06, 0.9731)
    assert "p3.2xlarge" in p.source


# -- placer's choice ------------------------------------------------------------------------------


@pytest.mark.parametrize("location", ["aws:us-east-1", "aws:us-east-2", "aws:us-west-2"])
@pytest.mark.parametrize("deadline", [52.0, 60.0, 72.0, 96.0])
def test_placer_takes_spot_when_its_expected_duration_fits_the_deadline(
    location: str, deadline: float
) -> None:
    job = DeadlineJob(work_h=48, deadline_h=deadline)
    choice = placer_choice(job, Prices.from_catalog(), location)
    # the pricing model written out: c = d per preemption, first start = d
    est = spot_run(48.0, spot_stats(location), provisioning_h=0.2, restart_h=0.0)
    assert est is not None and choice.estimate == est
    assert choice.spot == (0.2 + est.expected_h <= deadline)


def test_location_of_a_trace_is_its_region() -> None:
    assert location_of("availability/1-node/aws-02-15-2023/us-east-1a_v100_1") == "aws:us-east-1"
    assert location_of("availability/16-node/aws-08-27-2023/us-west-2c_v100_1") == "aws:us-west-2"
    assert location_of("preemption/1-node/gcp-04-30-2023/us-central1-a_c3-88") == (
        "gcp:us-central1")


def test_trace_stats_are_the_catalogs_measure() -> None:
    tr = trace(1, 1, 0, 1, 0, 0, 0, 1)  # cyclic: up runs 3 (7, 0, 1) and 1; down runs 1 and 3
    s = trace_stats(tr, "test:x")
    assert (s.availability, s.mtbf_h, s.mttr_h) == (0.5, 0.5, 0.5)
    assert s.wait_h == pytest.approx((0 + 0 + 1 + 0 + 3 + 2 + 1 + 0) / 8 * 0.25)
    assert trace_stats(ALWAYS, "x").mtbf_h == math.inf
    assert placer_choice(JOB, PRICES, "x", trace_stats(NEVER, "x")).spot is False


# -- properties -----------------------------------------------------------------------------------

_traces = st.lists(st.booleans(), min_size=1, max_size=40)
_gaps = st.sampled_from([180.0, 450.0, 900.0, 1800.0])  # 0.05 h to 0.5 h: some ticks exceed d


@st.composite
def _jobs(draw: st.DrawFn) -> DeadlineJob:
    d = draw(st.sampled_from([0.0, 0.1, 0.25]))
    work = draw(st.floats(0.5, 4.0))
    slack = draw(st.floats(d, 4.0))
    return DeadlineJob(work_h=work, deadline_h=work + slack, changeover_h=d)


@settings(max_examples=60, deadline=None)
@given(_traces, _gaps, _jobs(), st.floats(0.0, 20.0))
def test_the_safe_policies_never_miss_when_the_slack_covers_one_changeover(
    up: list[bool], gap_s: float, job: DeadlineJob, offset: float
) -> None:
    tr = SpotTrace("random", gap_s, np.array(up))
    for policy in (OnDemandOnly(), Greedy(), UniformProgress(),
                   PlacerSafetyNet("test:x", NEVER_PREEMPTED),
                   PlacerSafetyNet("aws:us-east-1"), PlacerOnline()):
        r = simulate(policy, job, tr, prices=PRICES, offset_h=offset)
        assert r.met_deadline, (policy.name, r)


@settings(max_examples=40, deadline=None)
@given(_traces, _gaps, _jobs(), st.integers(1, 3))
def test_every_bill_is_its_hours_at_their_prices_and_at_least_the_work_on_spot(
    up: list[bool], gap_s: float, job: DeadlineJob, nodes: int
) -> None:
    tr = SpotTrace("random", gap_s, np.array(up))
    job = job.model_copy(update={"nodes": nodes})
    floor = (job.work_h + job.changeover_h) * nodes * PRICES.spot
    for policy in lineup():
        r = simulate(policy, job, tr, prices=PRICES)
        assert r.cost_usd == pytest.approx(nodes * (r.spot_h * PRICES.spot
                                                    + r.on_demand_h * PRICES.on_demand))
        if r.finish_h is not None:  # placer may still be waiting for spot at the horizon
            assert r.cost_usd >= floor - 1e-9
            assert r.spot_h + r.on_demand_h >= job.work_h + job.changeover_h - 1e-9
            assert r.changeovers >= 1


@settings(max_examples=40, deadline=None)
@given(_traces, _gaps, _jobs(), st.floats(1.0, 5.0))
def test_a_dearer_spot_price_never_makes_a_price_blind_policy_cheaper(
    up: list[bool], gap_s: float, job: DeadlineJob, factor: float
) -> None:
    tr = SpotTrace("random", gap_s, np.array(up))
    dear = PRICES.model_copy(update={"spot": PRICES.spot * factor})
    for policy in (Greedy(), UniformProgress(), OnDemandOnly()):
        assert (simulate(policy, job, tr, prices=dear).cost_usd
                >= simulate(policy, job, tr, prices=PRICES).cost_usd - 1e-9)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 30), st.integers(0, 30), _gaps, _jobs())
def test_spot_arriving_later_never_makes_a_run_cheaper(
    k1: int, k2: int, gap_s: float, job: DeadlineJob
) -> None:
    early, late = sorted((k1, k2))

    def cost(policy: DeadlinePolicy, k: int) -> float:
        tr = SpotTrace("later", gap_s, np.array([False] * k + [True] * 200))
        return simulate(policy, job, tr, prices=PRICES).cost_usd

    # Not Uniform Progress: see the next test.
    for make in (Greedy, lambda: PlacerSafetyNet("test:x", NEVER_PREEMPTED)):
        assert cost(make(), early) <= cost(make(), late) + 1e-9


def test_uniform_progress_may_pay_a_changeover_for_a_last_crumb_of_work() -> None:
    """Found by the property above: on demand and ahead of the line, Uniform Progress takes
    spot when it comes back however little work is left, and a changeover of 0.1 h at $1 costs
    more than finishing 0.0375 h at $3. Spot arriving one tick later is then cheaper."""
    job = DeadlineJob(work_h=2.9375, deadline_h=3.9375, changeover_h=0.1)

    def cost(k: int) -> float:
        tr = SpotTrace("later", 450.0, np.array([False] * k + [True] * 200))
        return simulate(UniformProgress(), job, tr, prices=PRICES).cost_usd

    assert cost(25) == pytest.approx(cost(26) + 0.1375 - 0.1125)


def test_a_later_deadline_never_makes_on_demand_dearer_or_placer_choose_worse() -> None:
    prices = Prices.from_catalog()
    picks = [placer_choice(DeadlineJob(work_h=48, deadline_h=d), prices, "aws:us-east-2").spot
             for d in (52, 60, 62, 72, 96)]
    assert picks == sorted(picks)  # once spot fits, a looser deadline keeps it
    assert picks == [False, False, True, True, True]


# -- sweeps and seeds ------------------------------------------------------------------------------


def test_offsets_are_stratified_reproducible_and_seeded() -> None:
    a = sample_offsets(100.0, 20.0, 10.0, seed=7, stream=(1, 2))
    assert a == sample_offsets(100.0, 20.0, 10.0, seed=7, stream=(1, 2))
    assert a != sample_offsets(100.0, 20.0, 10.0, seed=8, stream=(1, 2))
    assert a != sample_offsets(100.0, 20.0, 10.0, seed=7, stream=(2, 2))
    assert len(a) == 9 and all(10 * i <= x < 10 * i + 10 for i, x in enumerate(a))
    assert all(x <= 80.0 for x in a)
    assert sample_offsets(100.0, 20.0, 10.0, seed=None) == tuple(10.0 * i for i in range(9))
    with pytest.raises(ConfigError, match="does not fit"):
        sample_offsets(10.0, 20.0, 1.0, seed=0)


def test_a_sweep_is_reproducible_from_its_seed() -> None:
    traces = {"a/1-node/aws-x/us-east-1a_v100_1": trace(*([1, 1, 0] * 40)),
              "a/1-node/aws-x/us-west-2b_v100_1": trace(*([1, 0, 0, 0] * 30))}
    ts = TraceSet(label="hand", traces=tuple(traces))
    sweep = Sweep(work_h=4.0, deadlines_h=(5.0, 8.0), changeover_h=0.25, stride_h=3.0, seed=3)
    first = run_sweep(ts, sweep, prices=PRICES, traces=traces)
    assert first == run_sweep(ts, sweep, prices=PRICES, traces=traces)
    other = run_sweep(ts, sweep.model_copy(update={"seed": 4}), prices=PRICES, traces=traces)
    assert [c.mean_cost_usd for c in other] != [c.mean_cost_usd for c in first]
    assert [(c.deadline_h, c.policy) for c in first[:6]] == [
        (5.0, p) for p in ("on-demand", "greedy", "uniform-progress", "placer",
                           "placer+safety-net", "placer-online")]
    od = first[0]
    assert (od.savings_pct, od.miss_pct, od.mean_cost_usd) == (0.0, 0.0, 4.25 * 3.0)
    assert all(c.miss_pct == 0.0 for c in first if c.policy != "placer")
    with pytest.raises(ConfigError, match="unknown spot trace"):
        run_sweep(TraceSet(label="x", traces=("nope",)), sweep, prices=PRICES, traces=traces)


# -- the documentation ----------------------------------------------------------------------------


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Spot under a deadline")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def test_the_docs_python_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", _section(), re.S)
    assert len(blocks) == 1
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], f"{DOC}:spot-deadline", "exec"), namespace)
    result = namespace["result"]
    assert isinstance(result, Run) and result.met_deadline


def test_the_docs_benchmark_command_runs(tmp_path: Path) -> None:
    (command,) = re.findall(r"```bash\n(.*?)\n```", _section(), re.S)
    assert command == "python benchmarks/spot_deadline.py --quick"
    proc = subprocess.run([sys.executable, *command.split()[1:], "--out-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"})
    assert proc.returncode == 0, proc.stderr
    assert "| uniform-progress |" in proc.stdout and "| placer |" in proc.stdout
    assert (tmp_path / "spot_deadline.png").stat().st_size > 0

