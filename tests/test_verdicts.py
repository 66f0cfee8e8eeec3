"""The explanations' "what if this job moved there" figures, and plans that do not depend on luck.

Every delta a plan shows must equal what a full re-evaluation of the moved plan says (the way
``placer.plan`` computed them before, one :func:`placer.optimizer.evaluate` per site), and the
same inputs must give the same plan.
"""

from __future__ import annotations

import json
import math
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import placer
from placer.catalog import default_catalog, default_inventory, resolve_inventory
from placer.limits import apply_caps
from placer.models import Dataset, Pipeline, Plan
from placer.optimizer import Edge, Link, Option, Problem, Read, evaluate, move_deltas
from placer.policy import PolicySet
from placer.policy import evaluate as evaluate_policies
from placer.pricing import Candidate, job_candidates
from placer.scheduler import build_problem
from tests.builders import job, pipeline
from tests.test_scheduler import ROOT

TODAY = date(2026, 6, 1)
LOCS = ("onprem:dc", "aws:eu-west-1", "gcp:us-central1", "azure:westeurope")


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@st.composite
def problems(draw: st.DrawFn) -> tuple[Problem, dict[str, int]]:
    """A small random DAG: parallel and empty edges, reads, delays, penalties, a tight pool."""
    n = draw(st.integers(1, 7))
    jobs = tuple(f"j{k}" for k in range(n))
    hours = st.floats(0.1, 10, allow_nan=False)
    options = {}
    for j in jobs:
        options[j] = tuple(
            Option(site=f"s{i}", location=draw(st.sampled_from(LOCS)), gpu="A100", spot=False,
                   duration_h=draw(hours), compute_usd=draw(st.floats(0, 100)),
                   start_delay_h=draw(st.sampled_from([0.0, 0.1, 0.5])),
                   penalty_usd=draw(st.sampled_from([0.0, 5.0])),
                   pool=draw(st.sampled_from([None, "dc/A100"])), pool_gpus=draw(st.integers(0, 8)))
            for i in range(draw(st.integers(1, 4))))
    gb = st.sampled_from([0.0, 1.0, 50.0, 800.0])
    edges = [Edge(jobs[a], jobs[b], draw(gb))
             for b in range(n) for a in range(b) if draw(st.booleans())]
    edges += draw(st.lists(st.sampled_from(edges), max_size=2)) if edges else []  # parallel
    reads = [Read(j, draw(st.sampled_from(LOCS)), draw(gb))
             for j in jobs if draw(st.booleans())]
    links = {(a, b): Link(draw(st.floats(0, 0.2)), draw(st.floats(0, 0.01)))
             for a in LOCS for b in LOCS if a != b}
    p = Problem(jobs=jobs, options=options, edges=tuple(edges), reads=tuple(reads), links=links,
                capacity={"dc/A100": 8})
    choice = {j: draw(st.integers(0, len(options[j]) - 1)) for j in jobs}
    return p, choice


@settings(max_examples=150, deadline=None)
@given(problems())
def test_every_move_equals_a_full_re_evaluation(case: tuple[Problem, dict[str, int]]) -> None:
    p, choice = case
    base = evaluate(p, choice)
    moves = move_deltas(p, choice)
    for j in p.jobs:
        for i in range(len(p.options[j])):
            moved = evaluate(p, {**choice, j: i})
            got = moves[j]
            assert close(got.cost_usd[i], moved.cost_usd - base.cost_usd), (j, i)
            assert close(got.penalty_usd[i], moved.penalty_usd - base.penalty_usd), (j, i)
            assert close(got.makespan_h[i], moved.makespan_h - base.makespan_h), (j, i)
        c = choice[j]
        assert moves[j].cost_usd[c] == moves[j].makespan_h[c] == 0.0


def test_the_longest_path_avoiding_a_job_is_found_when_every_critical_path_uses_it() -> None:
    """a → hub → c is the only critical path; speeding the hub up leaves b → d (6 h)."""
    o = lambda h: (Option("x", "aws:eu-west-1", "A100", False, h, 1.0),  # noqa: E731
                   Option("x", "aws:eu-west-1", "A100", False, 0.5, 9.0))
    p = Problem(jobs=("a", "b", "hub", "c", "d"),
                options={"a": o(2), "b": o(5), "hub": o(8), "c": o(1), "d": o(1)},
                edges=(Edge("a", "hub", 0), Edge("hub", "c", 0), Edge("b", "d", 0)))
    choice = dict.fromkeys(p.jobs, 0)
    assert evaluate(p, choice).makespan_h == 11.0
    assert move_deltas(p, choice)["hub"].makespan_h == (0.0, -5.0)


def test_a_missing_link_is_named() -> None:
    opts = (Option("x", "aws:eu-west-1", "A100", False, 1, 1),
            Option("y", "gcp:us-central1", "A100", False, 1, 1))
    p = Problem(jobs=("a", "b"), options={"a": opts[:1], "b": opts},
                edges=(Edge("a", "b", 5.0),))
    with pytest.raises(ValueError, match="no link from 'aws:eu-west-1' to 'gcp:us-central1'"):
        move_deltas(p, {"a": 0, "b": 0})


# -- through placer.plan -----------------------------------------------------------------------


def problem_of(pipe: Pipeline, policies: PolicySet) -> tuple[Problem, dict[str, list[Candidate]]]:
    """The problem ``placer.plan`` solved, rebuilt from the same public steps."""
    inv = default_inventory()
    sites = resolve_inventory(inv, default_catalog())
    elig = evaluate_policies(pipe, sites, policies)
    by_name = {s.name: s for s in sites}
    cands = {}
    for j in pipe.topological_order():
        e = elig[j]
        cs = job_candidates(pipe.job(j), [by_name[s] for s in e.allowed], e.penalties)
        cands[j] = apply_caps(pipe.job(j), cs, e, policies)[0]
    return build_problem(pipe, sites, inv, default_catalog(), cands), cands


def index_of(cands: list[Candidate], site: str, label: str | None) -> int:
    return next(i for i, c in enumerate(cands) if c.option.site == site and c.label == label)


@st.composite
def pipelines(draw: st.DrawFn) -> Pipeline:
    n = draw(st.integers(1, 5))
    data = Dataset(name="corpus", size=draw(st.sampled_from([0, 20, 900])),
                   location=draw(st.sampled_from(["aws:us-east-1", "onprem:fra-dc1"])))
    jobs = []
    for k in range(n):
        parents = draw(st.lists(st.integers(0, k - 1), max_size=2, unique=True)) if k else []
        gpus = draw(st.sampled_from([{"A100-80GB": 2.0, "H100": 1.2}, {"V100": 3.0, "T4": 6.0},
                                     {"A100-40GB": 1.5, "A100-80GB": 1.4}]))
        jobs.append(job(f"j{k}", gpu_types=gpus, resources={"gpus": draw(st.sampled_from([1, 8]))},
                        inputs=[f"j{p}.out" for p in parents] or ["corpus"],
                        outputs={"out": f"{draw(st.sampled_from([0, 30, 400]))}GB"},
                        spot=draw(st.booleans())))
    return pipeline(*jobs, datasets=(data,))


@settings(max_examples=20, deadline=None)
@given(pipelines())
def test_a_plans_deltas_equal_a_full_re_evaluation_for_every_job_and_site(pipe: Pipeline) -> None:
    prefer = placer.load_policies(ROOT / "policies" / "prefer-onprem.yaml")
    plan = placer.plan(pipe, policies=prefer)
    assert plan.status == "placed"
    problem, cands = problem_of(pipe, prefer)
    choice = {j: index_of(cands[j], p.site, plan.verdicts[j][p.site].best_option)
              for j, p in plan.jobs.items()}
    base = evaluate(problem, choice)
    moved_somewhere = 0
    for j, row in plan.verdicts.items():
        for site, v in row.items():
            if v.best_option is None:
                continue
            moved_somewhere += v.note != "chosen"
            i = index_of(cands[j], site, v.best_option)
            moved = evaluate(problem, {**choice, j: i})
            assert v.delta_cost_usd is not None and v.delta_makespan_h is not None
            assert close(v.delta_cost_usd, moved.cost_usd - base.cost_usd), (j, site)
            assert close(v.delta_makespan_h, moved.makespan_h - base.makespan_h), (j, site)
            # The option shown is the site's best in the objective (cost + penalty).
            here = [k for k, c in enumerate(cands[j]) if c.option.site == site]
            objective = [evaluate(problem, {**choice, j: k}) for k in here]
            best = min(s.cost_usd + s.penalty_usd for s in objective)
            assert moved.cost_usd + moved.penalty_usd <= best + 1e-9
    assert moved_somewhere


def test_deltas_are_shown_for_large_pipelines_too() -> None:
    """No size cap: a 200-job chain still says what each move would do to the makespan."""
    jobs = [job(f"j{k}", inputs=[f"j{k - 1}.out"] if k else [], outputs={"out": "1GB"},
                gpu_types={"A100-80GB": 1.0, "H100": 0.6}) for k in range(200)]
    plan = placer.plan(pipeline(*jobs))
    shown = [v.delta_makespan_h for row in plan.verdicts.values() for v in row.values()
             if v.eligible and v.best_option is not None]
    assert shown and all(d is not None for d in shown)
    assert "assumes on-prem pools have room" in plan.explain()


# -- determinism -------------------------------------------------------------------------------


def decision(plan: Plan) -> object:
    """The plan as JSON without the one measurement in it (how long the solver took), every
    number to 12 significant digits: a sum over jobs taken in another order may differ in its
    last bit, and that is not a different decision."""

    def rounded(x: object) -> object:
        if isinstance(x, float):
            return float(f"{x:.12g}")
        if isinstance(x, dict):
            return {k: rounded(v) for k, v in x.items()}
        if isinstance(x, list):
            return [rounded(v) for v in x]
        return x

    return rounded(json.loads(plan.model_dump_json(exclude={"solve_time_s"})))


def test_the_same_inputs_give_the_same_plan_and_job_order_only_breaks_ties() -> None:
    quick = placer.load_pipeline(ROOT / "examples/quickstart/pipeline.yaml")
    inv = placer.load_inventory(ROOT / "examples/quickstart/inventory.yaml")
    pols = placer.load_policies(ROOT / "policies")
    first = placer.plan(quick, inv, pols, deadline="12h", today=TODAY)
    second = placer.plan(quick, inv, pols, deadline="12h", today=TODAY)
    assert first.model_dump_json(exclude={"solve_time_s"}) == \
        second.model_dump_json(exclude={"solve_time_s"})
    assert first.explain().split("\n", 3)[3] == second.explain().split("\n", 3)[3]
    # Listed in reverse, the jobs keep their DAG; this plan has no ties, so nothing changes
    # (dicts compare without their order).
    backwards = pipeline(*reversed(quick.jobs), datasets=quick.datasets, name=quick.name)
    assert backwards.topological_order() != quick.topological_order()
    again = placer.plan(backwards, inv, pols, deadline="12h", today=TODAY)
    assert decision(again) == decision(first)
