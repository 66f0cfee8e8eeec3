"""`placer plan` end to end, YAML to explained plan, and what the explanations cost (issue 12).

For SkyPilot-style pipelines of 100, 500 and 2,000 jobs (each job has 1-5 parents among the
earlier jobs, 1-4 nodes, a 0-1,000 GB output, and 1-3 accelerators, each offered by one cloud
in every one of its regions: ~6-20 candidates per job), on an inventory of one on-prem site
and 19 regions of three clouds (the embedded catalog's regions, egress and provisioning; each
region offers its cloud's catalog node types at a regional price), with datasets tagged for
the shipped residency policies, it times (median of ``--runs``):

* every stage: loading the three YAML files, policy evaluation, candidates (with caps),
  building the problem, solving, the explanations' deltas, and ``placer.plan`` as a whole
  (its solve time reported apart: that is the optimizer's, not this benchmark's, concern);
* ``plan.explain()`` (the text);
* the deltas the old way, side by side in the same process: one full
  :func:`placer.optimizer.evaluate` per (job, eligible site that lost), as ``placer.plan`` did
  before. Where that would take longer than ``--old-budget`` seconds, a seeded sample of the
  moves is timed and the total extrapolated (the table says so). The sampled old deltas are
  checked against the new ones (largest absolute difference, in USD and hours).

Prints a table and writes a PNG; it does not touch ``benchmarks/RESULTS.md``.

    python benchmarks/plan_end_to_end.py                       # 100, 500, 2,000 jobs
    python benchmarks/plan_end_to_end.py --sizes 100 --runs 5  # one size
    python benchmarks/plan_end_to_end.py --quick               # 30 jobs, seconds
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import placer  # noqa: E402
from placer.catalog import default_catalog, resolve_inventory  # noqa: E402
from placer.limits import apply_caps  # noqa: E402
from placer.models import Inventory, Location, Pipeline, Plan  # noqa: E402
from placer.optimizer import Problem, evaluate, move_deltas  # noqa: E402
from placer.policy import PolicySet  # noqa: E402
from placer.policy import evaluate as evaluate_policies  # noqa: E402
from placer.pricing import Candidate, job_candidates  # noqa: E402
from placer.scheduler import build_problem  # noqa: E402

TODAY = date(2026, 6, 1)
TARGETS = {100: 0.1, 500: 0.5, 2000: 2.0}
"""Issue 12's end-to-end targets (seconds, with explanations)."""
POLICY_FILES = ("locations.yaml", "eea-residency.yaml", "prefer-onprem.yaml")

REGIONS: dict[str, tuple[str, ...]] = {
    "aws": ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-west-2", "eu-central-1",
            "eu-north-1"),
    "gcp": ("us-central1", "us-east4", "us-west1", "europe-west1", "europe-west4",
            "europe-west3"),
    "azure": ("eastus", "westus2", "northeurope", "westeurope", "germanywestcentral",
              "swedencentral"),
}
#: SkyPilot-style accelerators: each belongs to one cloud (the A100-80GB also to on-prem).
ACCELERATORS: dict[str, str] = {
    "V100": "aws", "A100-80GB": "aws", "T4": "aws",
    "A100-40GB": "gcp", "L4": "gcp", "H200": "gcp",
    "H100": "azure", "A100-80GB-PCIe": "azure", "H100-NVL": "azure",
}


# -- the instances ---------------------------------------------------------------------------


def inventory_yaml(seed: int) -> dict[str, Any]:
    """One on-prem site (a pool that never binds) and every region of :data:`REGIONS`."""
    rng = random.Random(seed)
    cat = default_catalog()
    template: dict[str, list[dict[str, Any]]] = {}
    seen: set[tuple[str, str, int]] = set()
    for loc, o in cat.all_offers():
        cloud = loc.key.split(":")[0]
        if ACCELERATORS.get(o.gpu) != cloud or (cloud, o.gpu, o.gpus_per_node) in seen:
            continue
        seen.add((cloud, o.gpu, o.gpus_per_node))
        template.setdefault(cloud, []).append(
            {"gpu": o.gpu, "gpus_per_node": o.gpus_per_node, "on_demand": o.on_demand,
             "spot": o.spot, "instance_type": o.instance_type})
    sites: dict[str, Any] = {
        "fra-dc": {"location": "onprem:fra-dc1", "country": "DE",
                   "pools": [{"gpu": "A100-80GB", "count": 1_000_000, "cost_per_gpu_hour": 1.2}],
                   "labels": {"class": "self-hosted"}},
    }
    for cloud, regions in REGIONS.items():
        for region in regions:
            factor = rng.uniform(0.9, 1.25)
            offers = []
            for base in template[cloud]:
                offer = {**base, "on_demand": round(base["on_demand"] * factor, 4)}
                if base["spot"] is None:
                    del offer["spot"]
                else:
                    offer["spot"] = round(base["spot"] * factor, 4)
                offers.append(offer)
            sites[f"{cloud}-{region}"] = {"location": f"{cloud}:{region}", "offers": offers}
    return {"apiVersion": "placer/v1", "kind": "Inventory", "name": "three-clouds",
            "sites": sites}


def pipeline_yaml(n: int, seed: int) -> dict[str, Any]:
    """A SkyPilot-style random DAG of ``n`` jobs reading a few tagged datasets."""
    rng = random.Random(seed)
    keys = [f"{c}:{r}" for c, rs in REGIONS.items() for r in rs]
    datasets: dict[str, Any] = {}
    for d in range(max(3, n // 40)):
        eu = rng.random() < 0.2
        loc = rng.choice([k for k in keys if ("eu" in k) == eu] or keys)
        datasets[f"data{d}"] = {
            "uri": f"s3://bench-{d}/", "size": f"{rng.randint(1, 500)}GB", "location": loc,
            "tags": {"residency": "EU" if eu and loc != "aws:eu-west-2" else "none",
                     "classification": "internal" if eu else "public"}}
    names = list(datasets)
    accels = list(ACCELERATORS)
    jobs: dict[str, Any] = {}
    for k in range(n):
        parents = rng.sample(range(k), rng.randint(1, min(5, k))) if k else []
        inputs = [f"t{p}.out" for p in sorted(parents)]
        if not parents or rng.random() < 0.1:
            # EU data only near the end: what descends from it stays in the EEA (lineage), so
            # early EU reads would confine nearly the whole DAG.
            late = k >= 0.9 * n
            inputs.append(rng.choice([d for d in names if late or
                                      datasets[d]["tags"]["residency"] != "EU"] or names))
        nodes = rng.randint(1, 4)
        gpus = nodes * rng.choice((1, 8)) if nodes > 1 else rng.choice((1, 4, 8))
        hours = rng.uniform(0.5, 8.0)
        chosen = rng.sample(accels, rng.randint(1, 3))
        jobs[f"t{k}"] = {
            "command": f"python task.py --id {k}",
            "resources": {"gpus": gpus},
            "gpu_types": {g: f"{round(hours * rng.uniform(0.5, 1.5) * 60)}m" for g in chosen},
            "inputs": inputs,
            "outputs": {"out": f"{rng.randint(0, 1000)}GB"},
            "spot": rng.random() < 0.5,
        }
    return {"apiVersion": "placer/v1", "kind": "Pipeline", "name": f"sky-{n}",
            "datasets": datasets, "jobs": jobs}


def write_instance(n: int, seed: int, where: Path) -> tuple[Path, Path]:
    where.mkdir(parents=True, exist_ok=True)
    pipe, inv = where / f"pipeline-{n}.yaml", where / "inventory.yaml"
    pipe.write_text(yaml.safe_dump(pipeline_yaml(n, seed), sort_keys=False))
    inv.write_text(yaml.safe_dump(inventory_yaml(seed), sort_keys=False))
    return pipe, inv


# -- the stages, by the public API -----------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def data_locations(pipeline: Pipeline) -> dict[str, Location]:
    cat = default_catalog()
    return {k: cat.location(k) for d in pipeline.datasets for k in d.copies if k in cat}


def stages(pipeline: Pipeline, inventory: Inventory, policies: PolicySet,
           plan: Plan) -> tuple[dict[str, float], Problem, dict[str, list[Candidate]]]:
    """What ``placer.plan`` does before and after its solve, step by step, each step timed.

    The solve is not repeated: the deltas are those of ``plan``'s own choice.
    """
    t: dict[str, float] = {}
    sites, t["resolve inventory"] = timed(lambda: resolve_inventory(inventory, default_catalog()))
    elig, t["policies"] = timed(lambda: evaluate_policies(
        pipeline, sites, policies, today=TODAY, locations=data_locations(pipeline)))
    by_name = {s.name: s for s in sites}

    def cands() -> dict[str, list[Candidate]]:
        out = {}
        for j in pipeline.topological_order():
            e = elig[j]
            cs = job_candidates(pipeline.job(j), [by_name[s] for s in e.allowed], e.penalties)
            out[j] = apply_caps(pipeline.job(j), cs, e, policies)[0]
        return out

    candidates, t["candidates"] = timed(cands)
    problem, t["build problem"] = timed(lambda: build_problem(
        pipeline, sites, inventory, default_catalog(), candidates))
    choice = plan_choice(plan, candidates)
    _, t["deltas (new)"] = timed(lambda: move_deltas(problem, choice))
    return t, problem, candidates


def plan_choice(plan: Plan, candidates: Mapping[str, list[Candidate]]) -> dict[str, int]:
    """The option index per job of ``plan`` (its chosen site's label among the candidates)."""
    out = {}
    for j, p in plan.jobs.items():
        label = plan.verdicts[j][p.site].best_option
        out[j] = next(i for i, c in enumerate(candidates[j])
                      if c.option.site == p.site and c.label == label)
    return out


def old_deltas(plan: Plan, problem: Problem, candidates: Mapping[str, list[Candidate]],
               budget_s: float, seed: int) -> tuple[float, int, int, float, float]:
    """The deltas as ``placer.plan`` computed them before: a full ``evaluate`` per move.

    Returns (seconds for all moves, measured or extrapolated; moves; moves timed; largest
    |cost difference| and |makespan difference| against the plan's new deltas).
    """
    choice = plan_choice(plan, candidates)
    moves = []
    for j, row in plan.verdicts.items():
        for site, v in row.items():
            if v.eligible and v.best_option is not None and v.note != "chosen":
                i = next(k for k, c in enumerate(candidates[j])
                         if c.option.site == site and c.label == v.best_option)
                moves.append((j, i, v))
    base, t_base = timed(lambda: evaluate(problem, choice))
    probe, t_one = timed(lambda: evaluate(problem, choice))
    del probe
    k = len(moves) if t_one * len(moves) <= budget_s else max(3, int(budget_s / t_one))
    sample = random.Random(seed).sample(moves, min(k, len(moves)))
    err_usd = err_h = 0.0
    t0 = time.perf_counter()
    for j, i, v in sample:
        s = evaluate(problem, {**choice, j: i})
        err_usd = max(err_usd, abs((s.cost_usd - base.cost_usd) - (v.delta_cost_usd or 0.0)))
        err_h = max(err_h, abs((s.makespan_h - base.makespan_h) - (v.delta_makespan_h or 0.0)))
    per = (time.perf_counter() - t0) / max(1, len(sample))
    return t_base + per * len(moves), len(moves), len(sample), err_usd, err_h


# -- the run ---------------------------------------------------------------------------------


@dataclass
class Row:
    jobs: int
    cands: float
    stage: dict[str, float]
    load: float
    plan: float
    solve: float
    explain: float
    old: float
    moves: int
    timed_moves: int
    err_usd: float
    err_h: float
    status: str

    @property
    def e2e(self) -> float:
        return self.load + self.plan + self.explain

    @property
    def share(self) -> float:
        """End to end without the solver's own time."""
        return self.e2e - self.solve

    @property
    def old_e2e(self) -> float:
        return self.e2e - self.stage["deltas (new)"] + self.old


def run_size(n: int, runs: int, seed: int, time_limit: float, old_budget: float,
             where: Path) -> Row:
    pipe_path, inv_path = write_instance(n, seed, where)
    policy_paths = [ROOT / "policies" / f for f in POLICY_FILES]
    loads, plans, solves, explains = [], [], [], []
    stage_runs: list[dict[str, float]] = []
    plan = None
    for _ in range(runs):
        t0 = time.perf_counter()
        pipeline = placer.load_pipeline(pipe_path)
        inventory = placer.load_inventory(inv_path)
        policies = placer.load_policies(*policy_paths)
        loads.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        plan = placer.plan(pipeline, inventory, policies, today=TODAY, time_limit_s=time_limit)
        t_plan = time.perf_counter() - t0
        plans.append(t_plan)
        solves.append(plan.solve_time_s)
        _, t_explain = timed(plan.explain)
        explains.append(t_explain)
        st, problem, candidates = stages(pipeline, inventory, policies, plan)
        stage_runs.append(st)
    assert plan is not None
    med = statistics.median
    stage = {k: med(r[k] for r in stage_runs) for k in stage_runs[0]}
    old, moves, timed_moves, err_usd, err_h = old_deltas(plan, problem, candidates, old_budget,
                                                         seed)
    row = Row(n, statistics.mean(len(c) for c in candidates.values()), stage, med(loads),
              med(plans), med(solves), med(explains), old, moves, timed_moves, err_usd, err_h,
              f"{plan.status}{' (optimal)' if plan.optimal else ''} {plan.solver}")
    print(f"  n={n}: {row.status}, e2e {row.e2e:.3f}s (solve {row.solve:.3f}s), "
          f"deltas new {stage['deltas (new)'] * 1000:.1f} ms vs old {old:.1f} s",
          file=sys.stderr, flush=True)
    return row


HEADERS = ["jobs", "cands/job", "load YAML", "policies", "candidates", "build", "plan()",
           "solve", "deltas new", "explain", "end to end", "e2e - solve",
           "deltas old (evaluate per move, no cap)", "old e2e - solve", "speed-up",
           "max |Δ| new vs old"]


def fmt(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 10 else f"{s:.0f} s"


def cells(r: Row) -> list[str]:
    old = fmt(r.old) + ("" if r.timed_moves == r.moves else
                        f" (extrapolated from {r.timed_moves} of {r.moves} moves)")
    return [str(r.jobs), f"{r.cands:.1f}", fmt(r.load), fmt(r.stage["policies"]),
            fmt(r.stage["candidates"]), fmt(r.stage["build problem"]), fmt(r.plan),
            fmt(r.solve), fmt(r.stage["deltas (new)"]), fmt(r.explain), fmt(r.e2e),
            fmt(r.share), old, fmt(r.old_e2e - r.solve), f"{(r.old_e2e - r.solve) / r.share:.0f}×",
            f"${r.err_usd:.1e} / {r.err_h:.1e} h"]


def print_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + " --- |" * len(HEADERS)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    text = "\n".join(lines)
    print(text)
    return text


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [r.jobs for r in rows]
    ax.plot(xs, [r.share for r in rows], marker="o", label="end to end - solve (new)")
    ax.plot(xs, [r.old_e2e - r.solve for r in rows], marker="s",
            label="end to end - solve, deltas the old way")
    ax.plot(xs, [r.stage["deltas (new)"] for r in rows], marker="^", label="deltas (new)")
    ax.plot(xs, [r.solve for r in rows], marker="x", linestyle=":", label="solve (optimizer)")
    goals = [(n, TARGETS[n]) for n in xs if n in TARGETS]
    ax.plot([g[0] for g in goals], [g[1] for g in goals], color="grey", linestyle="--",
            marker="_", label="issue 12 target, end to end")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("jobs")
    ax.set_ylabel("seconds (median)")
    ax.set_title("placer plan, YAML to explained plan (SkyPilot-style DAGs, 2 cores)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,500,2000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=120.0, help="solver limit (s)")
    ap.add_argument("--old-budget", type=float, default=30.0,
                    help="seconds to spend timing the old deltas per size (then extrapolate)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    ap.add_argument("--quick", action="store_true", help="30 jobs, 2 runs")
    args = ap.parse_args(argv)
    sizes = [30] if args.quick else [int(s) for s in args.sizes.split(",")]
    runs = 2 if args.quick else args.runs
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_size(n, runs, args.seed, args.time_limit, args.old_budget, Path(tmp))
                for n in sizes]
    print_table(rows)
    png = args.out / "plan_end_to_end.png"
    plot(rows, png)
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
