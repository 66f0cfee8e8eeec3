"""How long reading and validating a big pipeline file takes (issue 9).

Generates pipelines of 1k, 10k and 100k jobs (chains and fan-outs reading datasets and each
other's outputs; half the jobs inherit a ``&defaults`` job through ``<<: *defaults``),
deterministic from a seed, and times ``placer.yamlio.read_yaml`` (the parse alone) and
``placer.load_pipeline`` (parse and validation) on each, in a fresh interpreter per run
(median wall and CPU seconds of several runs), plus ``placer validate`` end to end for the
biggest. With ``--base`` the same files are timed side by side on another checkout (the code
before a change) at the sizes where it finishes within ``--base-limit`` seconds.
Prints a table, writes a PNG and appends a section to ``benchmarks/RESULTS.md`` with the
command that produced it. Not a test: nothing here asserts a time.

    python benchmarks/yaml_validate.py                      # 1k/10k/100k, 3 runs each
    python benchmarks/yaml_validate.py --base /tmp/placer-base   # + the old code side by side
    python benchmarks/yaml_validate.py --quick              # 200/1k jobs, seconds; no RESULTS.md
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LOCATIONS = ("aws:us-east-1", "aws:eu-central-1", "gcp:europe-west4", "onprem:fra-dc1")
IMAGE = "ghcr.io/acme/bench@sha256:" + "4f6c0f0f1f8f1d1e" * 4
GPU_SETS = (
    "{T4: 3h, L4: 2h, A100-40GB: 1h}",
    "{A100-40GB: 6h, A100-80GB: 5h30m, H100: 3h}",
    "{V100: 2h, A100-80GB: 1h}",
)


def generate(n_jobs: int, seed: int = 0) -> str:
    """A valid pipeline of ``n_jobs`` jobs: chains (each job reads the one before) and
    fan-outs (a split job, workers reading its output, a reducer after all of them)."""
    rng = random.Random(seed)
    n_data = max(1, n_jobs // 20)
    out = ["apiVersion: placer/v1", "kind: Pipeline", f"name: bench-{n_jobs}", "", "datasets:"]
    for d in range(n_data):
        out += [
            f"  ds-{d}:",
            f"    uri: s3://bench-{seed}/ds-{d}/",
            f"    size: {rng.randint(1, 2000)}GB",
            f"    location: {rng.choice(LOCATIONS)}",
            f"    tags: {{residency: {rng.choice(('EU', 'none'))}, classification: public}}",
        ]
    out += ["", "jobs:"]
    out += [
        "  j0: &defaults",
        "    command: python -m bench.step --in $PLACER_INPUTS --out $PLACER_OUTPUTS",
        f"    image: {IMAGE}",
        "    resources: {gpus: 1}",
        f"    gpu_types: {GPU_SETS[0]}",
        "    outputs: {out: 1GB}",
        "    labels: {team: bench}",
    ]
    i = 1

    def job(inputs: list[str], after: list[str] | None = None) -> str:
        nonlocal i
        name = f"j{i}"
        i += 1
        lines = [f"  {name}:"]
        if rng.random() < 0.5:
            lines += ["    <<: *defaults"]
        else:
            lines += [
                f"    command: python -m bench.step{i % 7} --seed {rng.randint(0, 9999)}",
                f"    image: {IMAGE}",
                f"    gpu_types: {rng.choice(GPU_SETS)}",
                f"    labels: {{team: t{i % 13}, stage: s{i % 5}}}",
                f"    spot: {'true' if rng.random() < 0.3 else 'false'}",
            ]
        lines += [f"    resources: {{gpus: {rng.choice((1, 1, 2, 4, 8))}}}"]
        if inputs:
            lines += ["    inputs:"] + [f"      - {x}" for x in inputs]
        lines += [f"    outputs: {{out: {rng.randint(1, 500)}GB}}"]
        if after:
            lines += [f"    after: [{', '.join(after)}]"]
        out.extend(lines)
        return name

    while i < n_jobs:
        left = n_jobs - i
        ds = f"ds-{rng.randrange(n_data)}"
        if rng.random() < 0.5 or left < 4:  # a chain
            prev = job([ds])
            for _ in range(min(left - 1, rng.randint(2, 30))):
                prev = job([f"{prev}.out"])
        else:  # a fan-out and its reducer
            split = job([ds, "j0.out"])
            workers = [job([f"{split}.out"]) for _ in range(min(left - 2, rng.randint(2, 40)))]
            job([f"{w}.out" for w in workers[:8]], after=workers[8:])
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class Row:
    code: str  # "new" or "old"
    n_jobs: int
    what: str  # "read_yaml", "load_pipeline" or "placer validate"
    runs: list[tuple[float, float]]  # (wall, CPU) seconds; empty when it did not finish
    note: str = ""

    @property
    def wall(self) -> float | None:
        return statistics.median(w for w, _ in self.runs) if self.runs else None

    @property
    def cpu(self) -> float | None:
        return statistics.median(c for _, c in self.runs) if self.runs else None


_TIME_ONE = """\
import sys, time
import placer
from placer.yamlio import read_yaml
fn = read_yaml if sys.argv[2] == "read_yaml" else placer.load_pipeline
t0, c0 = time.perf_counter(), time.process_time()
fn(sys.argv[1])
print(placer.__file__, time.perf_counter() - t0, time.process_time() - c0)
"""


def _env(code_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{code_root}{os.pathsep}{code_root / 'backends'}"
    return env


def time_load(
    code_root: Path, path: Path, what: str, runs: int, limit: float
) -> tuple[list[tuple[float, float]], str]:
    """Seconds of ``read_yaml`` (the parse alone) or ``load_pipeline`` (parse and validation),
    each run in a fresh interpreter in ``code_root`` (no warm caches; imports not counted)."""
    out: list[tuple[float, float]] = []
    for _ in range(runs):
        try:
            res = subprocess.run([sys.executable, "-c", _TIME_ONE, str(path), what],
                                 env=_env(code_root), cwd=code_root,
                                 capture_output=True, text=True, timeout=limit, check=False)
        except subprocess.TimeoutExpired:
            return out, f"did not finish in {limit:g} s"
        if res.returncode != 0:
            return out, f"failed: {res.stderr.strip().splitlines()[-1:]}"
        module, wall, cpu = res.stdout.strip().splitlines()[-1].rsplit(" ", 2)
        if not Path(module).resolve().is_relative_to(code_root.resolve()):
            raise RuntimeError(f"timed {module}, not the code in {code_root}")
        out.append((float(wall), float(cpu)))
    return out, ""


def time_cli(
    code_root: Path, path: Path, runs: int, limit: float
) -> tuple[list[tuple[float, float]], str]:
    """``placer validate FILE``: the whole command, interpreter start-up included."""
    out: list[tuple[float, float]] = []
    cmd = [sys.executable, "-c", "from placer.cli import main; main()", "validate", str(path)]
    for _ in range(runs):
        t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            res = subprocess.run(cmd, env=_env(code_root), cwd=code_root, capture_output=True,
                                 text=True, timeout=limit, check=False)
        except subprocess.TimeoutExpired:
            return out, f"did not finish in {limit:g} s"
        wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
        if res.returncode != 0:
            return out, f"exit {res.returncode}: {res.stderr.strip()[-200:]}"
        out.append((wall, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime))
    return out, ""


HEADERS = ["code", "jobs", "file", "what", "runs", "median wall (s)", "median CPU (s)", "note"]


def cells(row: Row, sizes: dict[int, int]) -> list[str]:
    def fmt(x: float | None) -> str:
        return f"{x:.2f}" if x is not None else "-"

    return [row.code, f"{row.n_jobs:,}", f"{sizes[row.n_jobs] / 1e6:.1f} MB", row.what,
            str(len(row.runs)), fmt(row.wall), fmt(row.cpu), row.note]


def print_table(rows: list[Row], sizes: dict[int, int]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="reading and validating a pipeline file")
    for h in HEADERS:
        table.add_column(h)
    for row in rows:
        table.add_row(*cells(row, sizes))
    Console().print(table)


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for code, what in sorted({(r.code, r.what) for r in rows}):
        pts = [r for r in rows if (r.code, r.what) == (code, what) and r.runs]
        if pts:
            ax.plot([r.n_jobs for r in pts], [r.cpu or 0.0 for r in pts], marker="o",
                    label=f"{code} code: {what}", linestyle="--" if code == "old" else "-")
        for r in rows:
            if (r.code, r.what) == (code, what) and not r.runs and r.note.startswith("did not"):
                ax.annotate(f"{code} {what}: {r.note}", (r.n_jobs, ax.get_ylim()[1]),
                            fontsize=7, ha="right", va="top")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("jobs in the pipeline file")
    ax.set_ylabel("median CPU seconds")
    ax.set_title("placer: parse / load and validate a pipeline YAML")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(rows: list[Row], sizes: dict[int, int], command: str, seed: int, base: str | None,
             plot_name: str) -> str:
    import yaml

    load = os.getloadavg()[0]
    lines = [
        f"## yaml_validate — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared: load average "
        f"{load:.1f} at the end, so wall times are inflated; CPU times are the process's own), "
        f"Python {platform.python_version()}, PyYAML {yaml.__version__} (libyaml: "
        f"{yaml.__with_libyaml__}). `generate(n, seed={seed})`: chains and fan-outs, one "
        "dataset per 20 jobs, half the jobs `<<: *defaults`. `read_yaml` and `load_pipeline` "
        "are timed in a fresh interpreter per run (imports not counted); `placer validate` is "
        "the whole command."
        + (f" Old code: `{base}` (its own directory and PYTHONPATH)." if base else ""),
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    lines += ["| " + " | ".join(cells(r, sizes)) + " |" for r in rows]
    lines += ["", f"Plot: `benchmarks/out/{plot_name}`.", "", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one run (smoke test)")
    ap.add_argument("--sizes", default=None, help="comma-separated job counts")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=float, default=600.0, help="seconds per run, new code")
    ap.add_argument("--base", type=Path, default=None, help="checkout of the old code to compare")
    ap.add_argument("--base-limit", type=float, default=300.0,
                    help="seconds per run of the old code; bigger sizes are then skipped")
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "out")
    ap.add_argument("--plot-name", default="yaml_validate.png")
    ap.add_argument("--results", type=Path, default=None,
                    help="markdown file to append to (default benchmarks/RESULTS.md; "
                         "none with --quick)")
    args = ap.parse_args(argv)
    if args.quick:
        sizes, runs, results = [200, 1000], 1, args.results
    else:
        sizes, runs = [1000, 10_000, 100_000], args.runs
        results = args.results or ROOT / "benchmarks" / "RESULTS.md"
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[Row] = []
    nbytes: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for n in sizes:
            paths[n] = Path(tmp) / f"pipeline-{n}.yaml"
            text = generate(n, args.seed)
            paths[n].write_text(text, encoding="utf-8")
            nbytes[n] = len(text.encode())
        codes = [("new", ROOT, args.limit)]
        if args.base is not None:
            codes.append(("old", args.base, args.base_limit))
        for code, root, limit in codes:
            too_big = None  # the smallest file this code did not finish: bigger ones are skipped
            for what in ("read_yaml", "load_pipeline"):  # loading includes reading
                for n in sizes:
                    t: list[tuple[float, float]] = []
                    if too_big is not None and n >= too_big:
                        note = f"skipped (did not finish {too_big:,} jobs in {limit:g} s)"
                    else:
                        t, note = time_load(root, paths[n], what, runs, limit)
                        too_big = n if not t else too_big
                    rows.append(Row(code, n, what, t, note))
                    print(rows[-1], flush=True)
        big = max(sizes)
        t, note = time_cli(ROOT, paths[big], runs, args.limit)
        rows.append(Row("new", big, "placer validate", t, note))
        print(rows[-1], flush=True)
    print_table(rows, nbytes)
    png = args.out_dir / args.plot_name
    plot(rows, png)
    print(f"wrote {png}")
    if results is not None:
        command = "python " + " ".join(["benchmarks/yaml_validate.py", *(argv or sys.argv[1:])])
        base = str(args.base) if args.base else None
        text = results.read_text(encoding="utf-8") if results.exists() else ""
        gap = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        with results.open("a", encoding="utf-8") as fh:
            fh.write(gap + markdown(rows, nbytes, command, args.seed, base, args.plot_name))
        print(f"appended to {results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
