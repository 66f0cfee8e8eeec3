"""Choose where and when every job of a DAG runs: exact DP, exact MILP (HiGHS), brute force.

The optimizer is pure: the same :class:`Problem` gives the same :class:`Solution`, nothing is
read from or written to the outside world, and inputs are never modified. (The one
exception is contained: HiGHS prints a banner from its C++ constructor, so
:mod:`placer.optimizer._highs` creates solver objects with stdout briefly pointed at
/dev/null.)

>>> from placer.optimizer import Option, Problem, solve
>>> p = Problem(jobs=("train",), options={"train": (
...     Option("fra", "onprem:fra-dc", "A100", False, duration_h=4.0, compute_usd=8.0),
...     Option("aws", "aws:eu-west-1", "H100", False, duration_h=2.0, compute_usd=20.0),
... )})
>>> solve(p, "cost", deadline_h=3.0).jobs["train"].option
1
"""

from placer.optimizer._delta import MoveDeltas, move_deltas
from placer.optimizer._generate import random_problem, skypilot_problem
from placer.optimizer._problem import Edge, Link, Option, Problem, Read
from placer.optimizer._replan import Replanner
from placer.optimizer._solution import JobSchedule, Solution, evaluate, violations
from placer.optimizer._solve import pareto_frontier, solve

__all__ = [
    "Edge",
    "JobSchedule",
    "Link",
    "MoveDeltas",
    "Option",
    "Problem",
    "Read",
    "Replanner",
    "Solution",
    "evaluate",
    "move_deltas",
    "pareto_frontier",
    "random_problem",
    "skypilot_problem",
    "solve",
    "violations",
]
