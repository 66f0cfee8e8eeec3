"""Replanner: a re-plan after a failure equals a cold solve (and brute force) of the narrowed
problem, keeps pinned jobs where they ran and never uses an excluded site."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from placer.optimizer import Problem, Replanner, skypilot_problem, solve, violations
from tests.optimizer.test_properties import SETTINGS, assert_same, problems

SITES = ("s0", "s1", "s2", "s3")


def narrowed(p: Problem, pinned: Mapping[str, int], gone: Collection[str]) -> Problem:
    """The problem a re-plan stands for, written out: fewer options, nothing else changed."""
    opts = {
        name: (p.options[name][pinned[name]],) if name in pinned
        else tuple(o for o in p.options[name] if o.site not in gone)
        for name in p.jobs
    }
    return replace(p, options=opts)


@st.composite
def situations(draw: st.DrawFn) -> tuple[Problem, dict[str, int], set[str]]:
    """A random problem whose options sit on four sites, some jobs pinned, some sites gone."""
    p = draw(problems())
    opts = {name: tuple(replace(o, site=draw(st.sampled_from(SITES))) for o in p.options[name])
            for name in p.jobs}
    p = replace(p, options=opts)
    pinned = {name: draw(st.integers(0, len(opts[name]) - 1))
              for name in p.jobs if draw(st.integers(0, 99)) < 30}
    gone = set(draw(st.lists(st.sampled_from(SITES), max_size=2)))
    return p, pinned, gone


def _pinnable(p: Problem, pinned: dict[str, int]) -> dict[str, int]:
    """Drop pins on options a pool can never hold (they are refused, tested below)."""
    cap = p.capacity
    return {n: o for n, o in pinned.items()
            if p.options[n][o].pool is None or p.options[n][o].pool_gpus <= cap["P"]}


@SETTINGS
@given(situations(), st.sampled_from([None, 1.0, 1.5]))
def test_replan_equals_cold_solve_and_brute_force(
    case: tuple[Problem, dict[str, int], set[str]], factor: float | None
) -> None:
    p, pinned, gone = case
    pinned = _pinnable(p, pinned)
    fastest = solve(p, "time")
    deadline = None if factor is None or not fastest.jobs else factor * fastest.makespan_h
    r = Replanner(p, deadline_h=deadline)
    assert_same(r.solution, solve(p, deadline_h=deadline))
    got = r.replan(pinned=pinned, exclude_sites=gone)
    if fastest.status == "infeasible":  # some job fits no pool: no re-plan can help
        assert got.status == "infeasible" and got.message
        return
    q = narrowed(p, pinned, gone)
    if any(not q.options[n] for n in q.jobs):
        assert got.status == "infeasible"
        assert "no option left with sites" in got.message
        return
    brute = solve(q, deadline_h=deadline, method="brute")
    if got.status == "infeasible":  # (the two may word a lost option and a full pool apart)
        assert brute.status == "infeasible"
        return
    assert_same(got, brute)
    assert violations(p, got) == []  # indices are the original problem's
    for name, s in got.jobs.items():
        if name in pinned:
            assert s.option == pinned[name]
        else:
            assert p.options[name][s.option].site not in gone


@SETTINGS
@given(situations(), situations())
def test_a_replan_does_not_depend_on_the_ones_before(
    a: tuple[Problem, dict[str, int], set[str]], b: tuple[Problem, dict[str, int], set[str]]
) -> None:
    p, pin_a, gone_a = a
    _, pin_b, gone_b = b
    pin_a = _pinnable(p, pin_a)
    pin_b = _pinnable(p, {n: min(o, len(p.options[n]) - 1) for n, o in pin_b.items()
                          if n in p.options})
    first = Replanner(p)
    first.replan(pinned=pin_a, exclude_sites=gone_a)
    assert_same(first.replan(pinned=pin_b, exclude_sites=gone_b),
                Replanner(p).replan(pinned=pin_b, exclude_sites=gone_b))


def test_warm_on_a_skypilot_dag_and_exact_after_losing_its_busiest_site() -> None:
    p = skypilot_problem(200, 1)
    r = Replanner(p)
    assert r.warm and r.solution.method == "milp-warm"
    assert r.solution.objective_value == pytest.approx(solve(p).objective_value, rel=1e-9)
    used: dict[str, int] = {}
    for name, s in r.solution.jobs.items():
        site = p.options[name][s.option].site
        used[site] = used.get(site, 0) + 1
    busiest = max(used, key=lambda s: (used[s], s))
    done = {name: r.solution.jobs[name].option for name in p.jobs[:60]}
    got = r.replan(pinned=done, exclude_sites={busiest})
    assert got.method == "milp-warm" and got.status == "optimal"
    cold = solve(narrowed(p, done, {busiest}))
    assert got.objective_value == pytest.approx(cold.objective_value, rel=1e-9)
    assert got.objective_value > r.solution.objective_value  # the lost site was worth money
    moved = [n for n in p.jobs[60:] if p.options[n][got.jobs[n].option].site == busiest]
    assert moved == []
    # Back to the original situation: the original optimum again, from the same warm LP.
    assert r.replan().objective_value == pytest.approx(r.solution.objective_value, rel=1e-9)


def test_refuses_unknown_jobs_and_options_a_job_may_not_use() -> None:
    p = skypilot_problem(5, 0)
    r = Replanner(p)
    with pytest.raises(ValueError, match="'nope' is not in the problem"):
        r.replan(pinned={"nope": 0})
    name = p.jobs[0]
    with pytest.raises(ValueError, match=f"{name!r}: option 99"):
        r.replan(pinned={name: 99})


def test_names_the_jobs_left_without_an_option() -> None:
    p = skypilot_problem(5, 0)
    every = {o.site for opts in p.options.values() for o in opts}
    got = Replanner(p).replan(exclude_sites=every)
    assert got.status == "infeasible"
    assert got.message.startswith("5 job(s) have no option left")
    assert repr(p.jobs[0]) in got.message or "..." in got.message


def test_the_docs_example_runs() -> None:
    """docs/optimizer.md's re-planning example, run as written."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "optimizer.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], "docs/optimizer.md", "exec"), {})
