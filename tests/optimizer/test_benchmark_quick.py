"""The scaling benchmark is not a test; this only checks that it still runs (toy sizes)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_runs_in_quick_mode(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "optimizer_scaling.py"), "--quick",
         "--out-dir", str(tmp_path), "--results", str(results)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "optimizer_scaling.png").stat().st_size > 0
    text = results.read_text()
    assert "Command: `python benchmarks/optimizer_scaling.py --quick" in text
    assert "| sky-chain-12 | 12 |" in text
    assert "| rand-dag-8x4-contended-deadline | 8 |" in text
    assert "error" not in text
    # The warm re-plans found the cold re-solves' optimum after every failure.
    assert "| replan-sky-dag-12 | 12 |" in text and "same optimum as cold" in text
    rows = [line for line in text.splitlines() if line.startswith("| sky-dag-12 ")]
    assert len(rows) == 1
    if importlib.util.find_spec("pulp") is not None:
        # Both ILPs finished on the toy DAG and found placer's optimum.
        assert "| yes |" in rows[0], rows[0]
