"""A survey: run many hunter examples without stopping at the first counterexample.

A property test stops at its first failure and shrinks it; a survey keeps generating, sorts
every counterexample by what it broke (``corpus.attribute``) and keeps the smallest case of
each kind. Use it to see every hole a tree has at once, or for a long run with numbers::

    python -m tests.hunter.survey --examples 2000 [--failover | --storage
                                  | --property shuffle|expiry|team|audit|lookalike]
                                  [--save DIR] [--seed N] [--repair policy-layout ...]

It prints examples run, time, how many were refused / not placed / ran (or compared), and the
counterexamples by kind; with ``--save`` the smallest case of each kind goes to the corpus.
``HUNTER_INCLUDE_OPEN=1`` also generates what shows the holes still open (``known.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, seed, settings

from tests.hunter.corpus import REPAIRS, attribute, save_found
from tests.hunter.harness import Outcome, hunt
from tests.hunter.hunting import signature
from tests.hunter.language import HUNTERS
from tests.hunter.strategies import cases, storage_cases

EVIDENCE = re.compile(r"^(journal step|journal copy|stored object|transfer|manifest|cluster)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-jobs", type=int, default=12)
    ap.add_argument("--failover", action="store_true", help="every case loses a job's site")
    ap.add_argument("--storage", action="store_true",
                    help="S3 worlds on two moto_servers (storage_cases) instead of fake stores")
    ap.add_argument("--property", choices=sorted(HUNTERS),
                    help="a property of the policy language (language.py) instead of runs")
    ap.add_argument("--save", type=Path, help="save the smallest case of each kind here")
    ap.add_argument("--repair", action="append", default=[], choices=sorted(REPAIRS),
                    help="repair this cause in every case first (to see past a known hole)")
    args = ap.parse_args(argv)
    logging.disable(logging.CRITICAL)

    if args.property:
        from tests.hunter import strategies

        strategy = getattr(strategies, f"{args.property}_cases")(max_jobs=min(args.max_jobs, 6))
        return _survey(args, HUNTERS[args.property], strategy)
    with contextlib.ExitStack() as stack:
        hunter = stack.enter_context(_storage_hunter()) if args.storage else hunt
        strategy = storage_cases(max_jobs=min(args.max_jobs, 4)) if args.storage else cases(
            max_jobs=args.max_jobs, failover=args.failover)
        return _survey(args, hunter, strategy)


@contextlib.contextmanager
def _storage_hunter() -> Iterator[Any]:
    from tests.hunter.storage import hunt_storage, servers_running

    with servers_running() as servers:
        yield lambda case, workdir: hunt_storage(case, workdir, servers)


def _survey(args: argparse.Namespace, hunter: Any, strategy: Any) -> int:
    stages: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    smallest: dict[str, tuple[int, dict[str, Any], Outcome]] = {}
    t0 = time.monotonic()

    @seed(args.seed)
    @settings(max_examples=args.examples, phases=["generate"], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def one(case: dict[str, Any]) -> None:
        for key in args.repair:
            case = REPAIRS[key][1](case)
        with tempfile.TemporaryDirectory(prefix="survey-") as d:
            o = hunter(case, Path(d))
        stages[o.stage] += 1
        if not o.counterexample:
            return
        sig = signature(o)
        if sig != "violation":
            why = []
        elif args.property:  # by what the first violation says, names and sites left out
            why = [re.sub(r"'[^']*'|\[[^\]]*\]|\{[^}]*\}|\S*\d\S*", "…",
                          o.violations[0])[:90]]
        elif args.storage:  # by the evidence that shows it
            why = sorted({m.group(0) for v in o.violations if (m := EVIDENCE.match(v))})
        else:
            why = [a.split(":", 1)[0] for a in attribute(case, o)]
        kind = sig + (" [" + ", ".join(why) + "]" if why else "")
        kinds[kind] += 1
        size = len(json.dumps(case))
        if kind not in smallest or size < smallest[kind][0]:
            smallest[kind] = (size, case, o)

    one()
    took = time.monotonic() - t0
    total = sum(stages.values())
    print(f"examples: {total} in {took:.0f}s ({took / max(total, 1):.2f}s each)")
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in stages.most_common()))
    print(f"counterexamples: {sum(kinds.values())}")
    for kind, n in kinds.most_common():
        print(f"  {n:5d}  {kind}")
    if args.save:
        for kind, (_, case, o) in smallest.items():
            path = save_found(case, o, f"survey ({kind})", folder=args.save,
                              kind=args.property or ("storage" if args.storage else "run"))
            print(f"saved {path}")
    return 1 if kinds else 0


if __name__ == "__main__":
    raise SystemExit(main())
