"""Re-planning after a failure without starting over: :class:`Replanner`.

When a site goes down mid-run, the jobs not yet done are re-planned: jobs that ran (or are
running) are pinned to the option they used, and the lost site's options are gone. Both
changes only *take options away*, and that is what makes a warm start exact and cheap:

* the problem is compiled once (at 1,000 jobs that is a third of a cold solve);
* for "min cost" with no deadline and no pool that could be overcommitted (the case where the
  assignment LP is the whole model, see :mod:`placer.optimizer._milp`), the LP is built once
  over every option (no dominance pruning: the option that dominated another may be the one
  taken away; location classes and folding stay exact when options are removed) and kept in
  HiGHS. A re-plan sets the upper bound of the removed options' columns to 0 and re-runs the
  dual simplex from the previous optimal basis: a few pivots. An integral optimum is a proven
  optimum of the narrowed problem, as in a cold solve; a fractional one (not seen on the
  benchmark instances) falls back to the cold route on the narrowed problem.
* any other problem (a deadline, the time objective, a contended pool) is re-solved by
  :func:`~placer.optimizer._solve.solve_compiled` on the narrowed compiled problem: no
  re-compile, same methods and guarantees as :func:`~placer.optimizer.solve`.

Each :meth:`Replanner.replan` states the whole situation (every pinned job, every excluded
site), not a change to the last one, so a re-plan never depends on the order of earlier calls.
Ties may be broken differently from a cold :func:`~placer.optimizer.solve` (both are proven
optimal, so their values are equal; the tests check that against a cold solve and brute force).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import replace

import numpy as np

from placer.optimizer._compile import BoolArray, Compiled, compile_problem
from placer.optimizer._milp import build_model, chosen, is_integral, new_highs, run_highs
from placer.optimizer._problem import Problem
from placer.optimizer._solution import Objective, Solution, build, infeasible
from placer.optimizer._solve import Method, any_risky, check_args, solve_compiled


class Replanner:
    """One problem kept solved, for re-plans that pin jobs and exclude sites.

    >>> from placer.optimizer import Option, Problem, Replanner
    >>> p = Problem(jobs=("train",), options={"train": (
    ...     Option("fra", "onprem:fra", "A100", False, duration_h=4.0, compute_usd=8.0),
    ...     Option("aws", "aws:eu-west-1", "H100", False, duration_h=2.0, compute_usd=20.0),
    ... )})
    >>> r = Replanner(p)
    >>> r.solution.jobs["train"].option
    0
    >>> r.replan(exclude_sites={"fra"}).jobs["train"].option
    1
    """

    def __init__(
        self,
        problem: Problem,
        objective: Objective = "cost",
        *,
        deadline_h: float | None = None,
        budget_usd: float | None = None,
        method: Method = "auto",
        time_limit_s: float = 60.0,
    ) -> None:
        check_args(objective, method, time_limit_s)
        t0 = time.perf_counter()
        c = compile_problem(problem)
        self._c = c
        self._objective: Objective = objective
        self._deadline = deadline_h if objective == "cost" else None
        self._budget = budget_usd if objective == "time" else None
        self._method: Method = method
        self._time_limit_s = time_limit_s
        sites = sorted({o.site for opts in c.options for o in opts})
        self._site_id = {s: i for i, s in enumerate(sites)}
        self._opt_site = [np.asarray([self._site_id[o.site] for o in opts], dtype=np.int64)
                          for opts in c.options]
        self._warm = (objective == "cost" and self._deadline is None and method == "auto"
                      and all(bool(a.any()) for a in c.allowed) and not any_risky(c))
        self.solution: Solution
        if self._warm:
            sol = self._warm_start(t0)
            if sol is not None:
                self.solution = sol
                return
            # A fractional first LP: this instance needs branching, so re-plans go cold.
            self._warm = False
        self.solution = self._cold(c, t0)

    @property
    def warm(self) -> bool:
        """Whether re-plans re-use the solved LP (else each is a cold solve, minus compiling)."""
        return self._warm

    def replan(
        self,
        *,
        pinned: Mapping[str, int] | None = None,
        exclude_sites: Collection[str] = (),
    ) -> Solution:
        """The best plan with ``pinned`` jobs kept on their option and ``exclude_sites`` unused.

        Args:
            pinned: job -> option index (``Solution.jobs[name].option``) for jobs that ran or
                are running; such a job stays on that option even if its site is excluded
                (it still counts for data movement).
            exclude_sites: sites no other job may use.

        Returns:
            A :class:`Solution`; ``status="infeasible"`` with a message naming the jobs that
            have no option left.

        Raises:
            ValueError: an unknown job, or an option index that is out of range or was never
                allowed (it needs more GPUs than its pool has).
        """
        t0 = time.perf_counter()
        c = self._c
        pins = dict(pinned or {})
        index = {name: j for j, name in enumerate(c.names)}
        for name, o in pins.items():
            j = index.get(name)
            if j is None:
                raise ValueError(f"pinned job {name!r} is not in the problem")
            if not 0 <= o < len(c.options[j]) or not c.allowed[j][o]:
                raise ValueError(f"pinned job {name!r}: option {o} is not one it may use")
        gone = np.zeros(len(self._site_id) + 1, dtype=np.bool_)
        for s in exclude_sites:
            gone[self._site_id.get(s, len(self._site_id))] = True
        allowed: list[BoolArray] = []
        empty: list[str] = []
        for j, name in enumerate(c.names):
            if name in pins:
                a = np.zeros(len(c.options[j]), dtype=np.bool_)
                a[pins[name]] = True
            else:
                a = c.allowed[j] & ~gone[self._opt_site[j]]
                if not a.any() and c.allowed[j].any():  # (a job no pool fits: solve says so)
                    empty.append(name)
            allowed.append(a)
        if empty:
            lost = ", ".join(sorted(str(s) for s in exclude_sites))
            shown = ", ".join(repr(n) for n in empty[:5]) + (" ..." if len(empty) > 5 else "")
            return infeasible(
                "milp", self._objective,
                f"{len(empty)} job(s) have no option left with sites {lost} excluded: {shown}",
                time.perf_counter() - t0,
            )
        if self._warm:
            sol = self._warm_replan(allowed, t0)
            if sol is not None:
                return sol
        narrowed = _narrow(c, allowed)
        return self._cold(narrowed, t0)

    # -- the two routes ----------------------------------------------------------------------

    def _cold(self, c: Compiled, t0: float) -> Solution:
        return solve_compiled(c, self._objective, deadline_h=self._deadline,
                              budget_usd=self._budget, method=self._method,
                              time_limit_s=self._time_limit_s, t0=t0)

    def _warm_start(self, t0: float) -> Solution | None:
        built = build_model(self._c, "cost", None, None, True, {}, prune=False)
        h = new_highs(built.lp, self._time_limit_s)
        h.setOptionValue("presolve", "off")
        self._built, self._h = built, h
        r = built.red
        self._col_job = r.xjob
        self._col_opt = r.xopt
        self._ub = np.ones(r.xjob.size)
        return self._lp(t0)

    def _warm_replan(self, allowed: list[BoolArray], t0: float) -> Solution | None:
        flat = np.concatenate(allowed)
        counts = np.asarray([len(a) for a in allowed], dtype=np.int64)
        starts = np.cumsum(counts) - counts
        ub = flat[starts[self._col_job] + self._col_opt].astype(np.float64)
        changed = np.flatnonzero(ub != self._ub).astype(np.int32)
        if changed.size:
            self._h.changeColsBounds(changed.size, changed, np.zeros(changed.size),
                                     ub[changed])
            self._ub = ub
        return self._lp(t0)

    def _lp(self, t0: float) -> Solution | None:
        """Run the kept LP; a plan when its optimum is integral, else None (go cold)."""
        status, values, bound = run_highs(self._h)
        if status != "optimal" or values is None or not is_integral(values, self._built):
            return None
        return build(self._c, chosen(values, self._built.red), status="optimal",
                     method="milp-warm", objective="cost",
                     solve_time_s=time.perf_counter() - t0, lower_bound=bound)


def _narrow(c: Compiled, allowed: list[BoolArray]) -> Compiled:
    """``c`` with fewer options allowed (everything else is shared, not copied)."""
    return replace(c, allowed=tuple(allowed))
