"""A local world in one command (issue 14): ``placer local up``, the no-outputs storage rule,
and the README's local run end to end on a real local Ray."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from placer import local
from placer.backends import PrefixLayout
from placer.errors import BackendUnavailableError
from placer.executor import Executor
from tests.backends.ray_clusters import require_ray
from tests.builders import job, pipeline
from tests.executor.world import World

ROOT = Path(__file__).resolve().parents[1]


def _bare_executor(world: World) -> Executor:
    """The world's executor with no storage anywhere: no layout roots, no store."""
    return Executor(world.journal, world.fakes, layout=PrefixLayout({}), storage=None,
                    clock=world.clock, sleep=world.clock.sleep, poll_interval_s=1.0)


def test_jobs_without_outputs_need_no_storage(tmp_path: Path) -> None:
    world = World(tmp_path, pipeline=pipeline(job("a"), job("b", after=["a"])))
    run = _bare_executor(world).start(world.plan(), pipeline=world.pipeline,
                                      inventory=world.inventory, policies=world.policies)
    st = run.wait()
    assert st.state == "SUCCEEDED", st
    told = [fj.env["PLACER_OUTPUT_DIR"] for f in world.fakes.values() for fj in f.jobs.values()]
    assert told == ["", ""]


def test_a_job_with_outputs_still_needs_storage_where_it_runs(tmp_path: Path) -> None:
    world = World(tmp_path, pipeline=pipeline(job("a", outputs={"model": 1})))
    run = _bare_executor(world).start(world.plan(), pipeline=world.pipeline,
                                      inventory=world.inventory, policies=world.policies)
    st = run.wait()
    assert st.state != "SUCCEEDED"
    assert st.jobs["a"].state == "STUCK"
    assert "no storage is configured" in (st.jobs["a"].reason or "")


# -- the README's local run, end to end on a real local Ray -----------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = "<!-- docs-test: e2e tests/test_local.py -->"


def _readme_block() -> list[str]:
    """The README's local-run block (the one marked as covered by this file), as lines."""
    text = README.read_text()
    after = text[text.index(MARK) + len(MARK):]
    body = after.split("```", 2)[1]
    return [ln for ln in body.splitlines() if ln.strip()]


def _shell(line: str, home: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    """One README line in bash, as a new user types it: HOME is ``home`` (so ``~`` and the
    state dir, journal and decision log are there); ``placer`` and ``python`` are this
    interpreter's."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_", "PLACER_")) or k == "PLACER_NO_CONTROLLER"}
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    return subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True,
                          text=True, **kw)


def test_the_readme_local_run_works_as_written(tmp_path: Path) -> None:
    require_ray()
    lines = _readme_block()
    assert lines[0].startswith("placer local up && placer submit ") and "--wait" in lines[0]
    assert lines[1] == "placer local down"
    state = tmp_path / ".placer" / "local"
    try:
        run = _shell(lines[0], tmp_path, timeout=240)
        assert run.returncode == 0, run.stdout + run.stderr
        # Live progress while waiting: each job's states as they change, then the run's end.
        progress = [ln for ln in run.stderr.splitlines() if ln.startswith("[")]
        for job_name in ("tokenize", "pretrain", "evaluate"):
            assert any(f"{job_name}  SUCCEEDED on local" in ln for ln in progress), run.stderr
        assert progress[-1].endswith("SUCCEEDED") and " run run-" in progress[-1]
        assert re.search(r"run-\S+: SUCCEEDED", run.stdout), run.stdout
        # The token is the owner's alone, and appears nowhere in what was printed.
        token = (state / "token").read_text().strip()
        assert stat.S_IMODE((state / "token").stat().st_mode) == 0o600
        assert token not in run.stdout + run.stderr
        assert token not in (state / "inventory.yaml").read_text()
        # Up again: idempotent, the same head, and the inventory still says what it offers.
        again = _shell("placer local up --gpus 2", tmp_path, timeout=60)
        assert again.returncode == 0 and "already up" in again.stdout, again.stdout
        assert "note: it offers 4 A100-80GB" in again.stderr
        assert "{gpu: A100-80GB, count: 4," in (state / "inventory.yaml").read_text()
        session = json.loads((state / "state.json").read_text())["session"]
        assert local.session_members(session)
    finally:
        down = _shell(lines[1], tmp_path, timeout=60)
    assert down.returncode == 0 and "stopped" in down.stdout, down.stdout + down.stderr
    assert not local.session_members(session)
    assert not (state / "token").exists()
    st = _shell("placer local status", tmp_path, timeout=30)
    assert st.returncode == 1 and "not started" in st.stdout


def test_ctrl_c_says_the_run_is_not_cancelled_and_how_to_resume(
        tmp_path: Path, local_world: local.World) -> None:
    world = local_world
    slow = tmp_path / "slow.yaml"
    slow.write_text(
        "apiVersion: placer/v1\nkind: Pipeline\nname: slow\njobs:\n  nap:\n"
        '    command: python -c "import time; time.sleep(60)"\n'
        "    gpu_types: {A100-80GB: 1m}\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
                                  f"{os.environ['PATH']}",
           "PLACER_DECISIONS": str(tmp_path / "d.jsonl")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "placer", "submit", str(slow), "--inventory",
         str(world.inventory), "--journal", str(tmp_path / "j.db"), "--wait"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stderr is not None
    for line in proc.stderr:  # progress arrives live: interrupt once the job runs
        if "nap  RUNNING" in line or "nap  SUBMITTED" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest
    said = [ln for ln in rest.splitlines() if ln.startswith("interrupted: ")]
    assert len(said) == 1, rest
    assert "is not cancelled" in said[0] and "placer resume run-" in said[0]
    assert "placer cancel run-" in said[0]


def test_without_ray_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(BackendUnavailableError, match=r"pip install 'placer\[ray\]'"):
        local.require_ray()


def test_down_never_stops_a_session_that_is_not_the_heads(tmp_path: Path) -> None:
    """A session id is reused (after a reboot): state.json naming another process's session
    must not end it."""
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        (tmp_path / "state.json").write_text(json.dumps({
            "address": "http://127.0.0.1:9", "session": other.pid,
            "temp_dir": str(tmp_path / "gone"), "gcs_port": 9}))
        assert local.down(tmp_path) is False
        assert other.poll() is None  # still running
        assert not (tmp_path / "state.json").exists()
    finally:
        other.kill()
        other.wait()
