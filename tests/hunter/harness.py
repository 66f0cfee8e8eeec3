"""Run one hunter case through placer and judge it against the oracle.

``hunt(case, workdir)``:

1. writes the case as a user would have it: ``pipeline.yaml``, ``inventory.yaml`` and a
   ``policies/`` folder (sub-folders, mixed-case suffixes, a README);
2. loads and plans through placer's own entry points (as ``placer plan`` does). A
   :class:`placer.errors.PlacerError` is a loud refusal (a pass); any other exception is a
   counterexample; a plan that is held or infeasible places nothing (a pass);
3. runs the plan with :class:`placer.executor.Executor` on fake compute backends (one per
   site, each writing its job's outputs where the manifest says) and a fake store, with the
   case's faults: sites going down (and up), jobs failing and retrying, submit errors, the
   executor dying between two journal writes and a new one resuming from the journal, two
   drivers on one run;
4. checks the invariant from what happened, never from the plan: every step row of the
   journal, every transfer, every manifest's output and input location, every submission each
   fake cluster received, every object in the store. Each must lie where the oracle allows.
   The journal's copy of the run (what a re-plan or a resume decides from) must also say what
   the plan was made from, in every field a residency decision reads.
"""

from __future__ import annotations

import datetime
import json
import re
import signal
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.hunter.oracle import Verdict, judge

MAX_TICKS = 400
LOAD_TIME_LIMIT_S = 30


class Hang(Exception):
    """Loading or planning took longer than :data:`LOAD_TIME_LIMIT_S` (a hostile input)."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread after ``seconds`` (no-op in other threads)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise Hang(f"took more than {seconds}s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class Killed(Exception):
    """The executor process dies here (raised from the executor's test hook)."""


@dataclass
class Outcome:
    """What happened to one case, and what of it broke the invariant."""

    stage: str
    """``refused`` (a PlacerError), ``not-placed`` (held/infeasible), ``ran``, ``crashed``."""
    detail: str = ""
    violations: list[str] = field(default_factory=list)
    unexpected: str | None = None
    why: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    """Where the journal's copy of the run's spec differs from what was planned (a re-plan
    or a resume reads the copy)."""

    @property
    def counterexample(self) -> bool:
        return bool(self.violations or self.unexpected)

    def report(self) -> str:
        lines = [f"stage: {self.stage} ({self.detail})"]
        if self.unexpected:
            lines.append(f"UNEXPECTED EXCEPTION (not a PlacerError): {self.unexpected}")
        lines += [f"VIOLATION: {v}" for v in self.violations[:20]]
        if len(self.violations) > 20:
            lines.append(f"... and {len(self.violations) - 20} more")
        lines += [f"journal drift: {d}" for d in self.drift]
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"oracle: {job}: {w}" for job, w in self.why.items()]
        return "\n".join(lines)

    def summary(self) -> str:
        if self.unexpected:
            return f"unexpected exception: {self.unexpected.splitlines()[0]}"
        return "; ".join(v[:200] for v in self.violations[:3])


# -- files ----------------------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    """Multi-line text as a block literal (hostile YAML cases stay readable)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and value.isascii() else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(data: Any, ascii_only: bool = False) -> str:
    """YAML that reads back exactly as ``data``. ``ascii_only`` escapes every non-ASCII
    character (``"\\u2003EU"``), so a corpus file shows what is invisible."""
    for allow_unicode in ((False,) if ascii_only else (True, False)):
        text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=allow_unicode,
                         width=100)
        if yaml.safe_load(text) == data:
            return text
    raise AssertionError("the case does not survive YAML")


def decision_day(case: Mapping[str, Any]) -> datetime.date:
    """The day a case is judged on: its ``day``, or today (UTC), the day the executor acts."""
    if case.get("day"):
        return datetime.date.fromisoformat(str(case["day"]))
    return datetime.datetime.now(datetime.UTC).date()


_DAY = re.compile(r"^\{day([+-]\d+)?\}$")


def dated(doc: Any, day: datetime.date) -> Any:
    """``doc`` with every ``{day+N}`` placeholder (an exception's ``expires``) made a date."""
    if isinstance(doc, dict):
        return {k: dated(v, day) for k, v in doc.items()}
    if isinstance(doc, list):
        return [dated(v, day) for v in doc]
    if isinstance(doc, str) and (m := _DAY.match(doc)):
        return day + datetime.timedelta(days=int(m.group(1) or 0))
    return doc


def write_policies(policies: Mapping[str, Any], folder: Path, day: datetime.date) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, doc in policies.items():
        f = folder / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(doc if isinstance(doc, str) else dump_yaml(dated(doc, day)),
                     encoding="utf-8")


def materialize(case: Mapping[str, Any], workdir: Path,
                day: datetime.date | None = None) -> dict[str, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {"pipeline": workdir / "pipeline.yaml", "inventory": workdir / "inventory.yaml",
             "policies": workdir / "policies"}
    for what in ("pipeline", "inventory"):  # raw text: hostile YAML, written verbatim
        doc = case[what]
        paths[what].write_text(doc if isinstance(doc, str) else dump_yaml(doc), encoding="utf-8")
    write_policies(case["policies"], paths["policies"], day or decision_day(case))
    return paths


def _unexpected(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)[-3:]
    where = " <- ".join(f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in reversed(tb))
    return f"{type(exc).__module__}.{type(exc).__name__}: {exc} [{where}]"


def load_and_plan(paths: Mapping[str, Path], sabotage: str | None = None,
                  day: datetime.date | None = None) -> tuple[Any, Any, Any, Any]:
    """What ``placer plan PIPELINE --inventory … --policies DIR`` does before printing.

    ``sabotage="ignore-policies"`` plans and runs as if the policy folder were empty (as if
    placer skipped every file): a planted hole, for the test that checks the hunter can hunt.
    """
    import placer
    from placer.catalog import default_catalog, resolve_inventory
    from placer.loading import check_dataset_sites, load_pipeline_with_source

    pipeline, sm = load_pipeline_with_source(paths["pipeline"])
    inventory = placer.load_inventory(paths["inventory"])
    policies = placer.load_policies(paths["policies"])
    check_dataset_sites(pipeline, resolve_inventory(inventory, default_catalog()), sm)
    if sabotage == "ignore-policies":
        policies = placer.PolicySet(name="empty")
    plan = placer.plan(pipeline, inventory, policies, today=day)
    return pipeline, inventory, policies, plan


# -- the fake world -------------------------------------------------------------------------------
class FakeClock:
    """Monotonic time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def writing_backend(site: str, store: Any, **kw: Any) -> Any:
    """A fake cluster whose jobs write where their manifest says: a checkpoint when they start
    running, every output when they succeed."""
    from placer.backends import RUNNING, SUCCEEDED
    from placer.testing import FakeComputeBackend

    class Writing(FakeComputeBackend):
        def status(self, handle: Any) -> Any:
            fj = self.jobs.get(handle.id)
            before = fj.state if fj is not None else None
            state = super().status(handle)
            fj = self.jobs[handle.id]
            if state != before and state == RUNNING:
                store.put(fj.env["PLACER_OUTPUT_DIR"] + "_checkpoint/part-0",
                          f"checkpoint of {fj.job}".encode())
            if state != before and state == SUCCEEDED:
                for uri in json.loads(fj.env["PLACER_OUTPUTS"]).values():
                    store.put(uri + "/part-0", f"output of {fj.job}".encode())
            return state

    return Writing(site, **kw)


def roots_for(locations: set[str]) -> dict[str, str]:
    return {loc: f"mem://{loc.replace(':', '-')}/placer" for loc in sorted(locations)}


@dataclass(frozen=True)
class Place:
    """Where an object lies in the output layout ``{root}/{run}/{job}/…``."""

    location: str
    run: str
    job: str
    src: str | None  # producer, for a copy under ``{job}/inputs/{src}/…``


def parse_uri(uri: str, roots: Mapping[str, str], jobs: Mapping[str, Any]) -> Place | None:
    """Where ``uri`` lies in the fake store: its location is the root it lies under."""
    for loc, root in roots.items():
        base = root.rstrip("/") + "/"
        if uri.startswith(base):
            return place_in_layout(loc, uri[len(base):], jobs)
    return None


def place_in_layout(location: str, rest: str, jobs: Mapping[str, Any]) -> Place:
    """``{run}/{job}/…`` (below a storage root) → run, owning job, and the producer of a copy
    (``{job}/inputs/{src}/…``)."""
    parts = rest.split("/")
    if len(parts) < 2:
        return Place(location, parts[0], "", None)
    src = parts[3] if len(parts) >= 5 and parts[2] == "inputs" and parts[3] in jobs else None
    return Place(location, parts[0], parts[1], src)


Locate = Callable[[str], "Place | None"]


def check_run(verdict: Verdict, journal: Any, run_id: str, backends: Mapping[str, Any],
              stored: Iterable[str], locate: Locate) -> list[str]:
    """Every violation of the invariant visible in the journal, the clusters and the store.

    ``stored`` lists every object URI in the store(s); ``locate`` says where a URI truly is
    (``None``: under no storage root) and which job's data it holds.
    """
    out: list[str] = []

    def allowed(job: str) -> list[str]:
        return sorted(verdict.allowed.get(job, ()))

    def copy_ok(location: str, src: str, reader: str) -> bool:
        # A copy of what ``src`` passes on, made for ``reader``: where the rules on tags let
        # that data rest, or where an exception lets the reader (whose lineage holds it) run.
        return (location in verdict.data_locations.get(src, ())
                or location in verdict.waived_locations.get(reader, ()))

    def at(uri: str, job: str, what: str, src: str | None = None) -> None:
        p = locate(uri)
        if p is None:
            out.append(f"{what}: {uri} lies under no storage root (an unknown location)")
            return
        if p.location not in verdict.locations.get(job, ()):
            out.append(f"{what}: {uri} is in {p.location}; data of {job!r} may rest only in "
                       f"{sorted(verdict.locations.get(job, ()))}")
        if src is not None and not copy_ok(p.location, src, job):
            out.append(f"{what}: {uri} (a copy of {src!r}'s output) is in {p.location}; "
                       f"what {src!r} passes on may rest only in "
                       f"{sorted(verdict.data_locations.get(src, ()))}")

    def readable(uri: str | None, reader: str, ref: str, what: str) -> None:
        # An input made by a job lies where that job ran, or (a copy) where its data may rest.
        p = locate(uri) if uri else None
        if p is None or not p.job:
            return
        good = copy_ok(p.location, p.src, p.job) if p.src else \
            p.location in verdict.locations.get(p.job, ())
        if not good:
            out.append(f"{what}: {reader!r} reads {ref} from {uri} in {p.location}, where "
                       f"{p.src or p.job!r}'s data may not rest")

    for s in journal.steps(run_id):
        if s.site is not None and s.site not in verdict.allowed.get(s.job, ()):
            out.append(f"journal step: {s.job!r} attempt {s.attempt} ({s.state}) on {s.site}; "
                       f"the truth allows it only on {allowed(s.job)}")
    for e in journal.events(run_id, "intent"):
        m = e.data.get("manifest", {})
        job = str(e.job)
        for uri in [m.get("output_dir"), *(m.get("outputs") or {}).values()]:
            if uri:
                at(uri, job, f"manifest of {job!r} (output)")
        for ref, uri in (m.get("inputs") or {}).items():
            readable(uri, job, ref, f"manifest of {job!r} (input)")
    for t in journal.transfers(run_id):
        src = locate(t.src_uri)
        at(t.dst_uri, t.job, f"transfer #{t.id} ({t.state})",
           (src.src or src.job) if src else None)
        if t.dst_location not in verdict.locations.get(t.job, ()):
            out.append(f"transfer #{t.id}: the journal records destination {t.dst_location} for "
                       f"{t.job!r}, allowed only {sorted(verdict.locations.get(t.job, ()))}")
    for site, backend in backends.items():
        for fj in backend.jobs.values():
            if site not in verdict.allowed.get(fj.job, ()):
                out.append(f"cluster {site} received {fj.job!r} ({fj.submission_id}); the truth "
                           f"allows it only on {allowed(fj.job)}")
            for ref, uri in json.loads(fj.env.get("PLACER_INPUTS", "{}")).items():
                readable(uri, fj.job, ref, f"cluster {site}")
    for uri in sorted(stored):
        p = locate(uri)
        if p is None:
            out.append(f"stored object: {uri} lies under no storage root")
            continue
        at(uri, p.job, "stored object", p.src)
    return list(dict.fromkeys(out))


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two JSON values differ (``a`` as planned, ``b`` as the journal has it)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in dict.fromkeys([*a, *b])
                for d in diff(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: planned {a!r}, journal has {b!r}"]


# Where a difference between the journal's copy and the plan's input changes a residency
# decision (a re-plan or a resume decides from the copy).
RESIDENCY_FIELDS = re.compile(
    r"^(pipeline\.datasets\[\d+\]\.(name|location|tags|uri|replicas|storage_tags)"
    r"|pipeline\.jobs\[\d+\]\.(name|inputs|outputs|after|labels|command|image|removes_tags)"
    r"|policies\.(required_tags|locations|rules|defaults|layers|tagging|transforms"
    r"|exceptions))\b")


def journal_drift(journal: Any, run_id: str, pipeline: Any, policies: Any) -> list[str]:
    """Where the journal's copy of the run's pipeline and policies differs from the ones
    planned with."""
    spec = journal.run_spec(run_id)
    planned = json.loads(json.dumps({
        "pipeline": pipeline.model_dump(mode="json", by_alias=True),
        "policies": policies.model_dump(mode="json", by_alias=True)}))
    return diff(planned, {"pipeline": spec.stored["pipeline"],
                          "policies": spec.stored["policies"]})[:10]


def _latest_site(journal: Any, run_id: str, job: str) -> str | None:
    steps = [s for s in journal.steps(run_id) if s.job == job and s.site]
    if steps:
        return str(max(steps, key=lambda s: s.attempt).site)
    for p in reversed(journal.plans(run_id)):
        if job in p.plan.jobs:
            return str(p.plan.jobs[job].site)
    return None


@dataclass
class World:
    """The infrastructure a run is driven on, and how to see what it holds afterwards."""

    backends: dict[str, Any]
    layout: Any
    storage: Any
    mover: Any | None
    stored: Callable[[], Iterable[str]]
    """Every object URI in the store(s), read after the run."""
    locate: Locate
    """Where a URI truly lies, and whose data it is."""


def fake_world(case: Mapping[str, Any], inventory: Any) -> World:
    """One fake cluster per site, one in-memory store with a root per location."""
    from placer.backends import PrefixLayout
    from placer.catalog import default_catalog, resolve_inventory
    from placer.testing import FakeDataMover, FakeStorageResolver

    f = case.get("faults") or {}
    sites = resolve_inventory(inventory, default_catalog())
    roots = roots_for({s.location.key for s in sites})
    store = FakeDataMover(roots)
    jobs = case["truth"]["jobs"]
    return World(
        backends={s.name: writing_backend(s.name, store, **cluster_faults(f)) for s in sites},
        layout=PrefixLayout(roots), storage=FakeStorageResolver.from_roots(roots),
        mover=store if f.get("mover", True) else None, stored=lambda: list(store.objects),
        locate=lambda uri: parse_uri(uri, roots, jobs))


def cluster_faults(f: Mapping[str, Any]) -> dict[str, Any]:
    """A fake cluster's scripted outcomes and submit errors (fresh lists per cluster)."""
    from placer.errors import BackendError

    return {"outcomes": {j: list(o) for j, o in f.get("outcomes", {}).items()},
            "submit_errors": {j: [BackendError(f"503 busy ({k})") for k in range(n)]
                              for j, n in f.get("submit_errors", {}).items()}}


def drive(case: Mapping[str, Any], loaded: tuple[Any, Any, Any, Any], world: World,
          workdir: Path, outcome: Outcome, verdict: Verdict) -> None:
    """Run the plan on ``world`` under the case's faults, then check the invariant."""
    from placer.errors import PlacerError
    from placer.executor import Executor, RetryPolicy
    from placer.journal import Journal

    pipeline, inventory, policies, plan = loaded
    f = case.get("faults") or {}
    backends = world.backends
    clock = FakeClock()
    kills = [dict(k) for k in f.get("kills", ())]
    seen: Counter[str] = Counter()

    def hook(point: str, run_id: str, job: str) -> None:
        seen[point] += 1
        for k in kills:
            if not k.get("fired") and k["point"] == point and seen[point] == k["nth"]:
                k["fired"] = True
                raise Killed(f"{point} #{k['nth']} ({job})")

    journals: list[Any] = []
    db = workdir / "journal.db"

    def fresh() -> Executor:
        j = Journal(db)
        journals.append(j)
        return Executor(j, backends, layout=world.layout, storage=world.storage,
                        mover=world.mover,
                        retry=RetryPolicy(max_attempts=3, base_s=1.0, cap_s=4.0, jitter=0.5,
                                          seed=1, max_call_errors=3),
                        max_concurrency=4, poll_interval_s=1.0, clock=clock,
                        sleep=clock.sleep, hook=hook)

    def die(ex: Executor) -> Executor:
        """The process driving ``ex`` is gone (its journal connection with it); a new one
        takes over from the journal."""
        ex.journal.close()
        return fresh()

    drivers = [fresh() for _ in range(max(1, int(f.get("drivers", 1))))]
    run_id: str | None = None
    try:
        try:
            run_id = drivers[0].start(plan, pipeline=pipeline, inventory=inventory,
                                      policies=policies).id
        except Killed as exc:
            outcome.notes.append(f"executor killed during start: {exc}")
            run_id = journals[0].runs(1)[0].id
            drivers[0] = die(drivers[0])
        events = list(f.get("events", ()))
        state = "RUNNING"
        for tick in range(MAX_TICKS):
            for ev in [e for e in events if e["tick"] == tick]:
                if "down" in ev and ev["down"] in backends:
                    backends[ev["down"]].down = True
                elif "up" in ev and ev["up"] in backends:
                    backends[ev["up"]].down = False
                elif "down_job" in ev:
                    probe = Journal(db, readonly=True)
                    site = _latest_site(probe, run_id, ev["down_job"])
                    probe.close()
                    if site in backends:
                        backends[site].down = True
                elif ev.get("crash"):
                    drivers[0] = die(drivers[0])
            k = tick % len(drivers)
            try:
                st = drivers[k].step(run_id)
            except Killed as exc:
                outcome.notes.append(f"executor killed at tick {tick}: {exc}; resumed")
                drivers[k] = die(drivers[k])
                continue
            except PlacerError as exc:
                # A loud refusal (e.g. a second driver refused by a run lock): that driver
                # stops; the others go on.
                outcome.notes.append(f"driver {k} refused at tick {tick}: "
                                     f"{type(exc).__name__}: {exc}")
                drivers[k].journal.close()
                del drivers[k]
                if not drivers:
                    state = "REFUSED"
                    break
                continue
            state = st.state
            if st.done:
                break
            clock.sleep(1.0)
        outcome.detail = f"run {state}"
    except Exception as exc:
        if not isinstance(exc, PlacerError):
            outcome.unexpected = _unexpected(exc)
        else:
            outcome.notes.append(f"refused during the run: {type(exc).__name__}: {exc}")
    finally:
        if run_id is not None:
            reader = Journal(db, readonly=True)
            journals.append(reader)
            outcome.drift = journal_drift(reader, run_id, pipeline, policies)
            outcome.violations += [f"journal copy: {d}" for d in outcome.drift
                                   if RESIDENCY_FIELDS.match(d)]
            outcome.violations += check_run(verdict, reader, run_id, backends, world.stored(),
                                            world.locate)
        for j in journals:
            j.close()


def hunt(case: Mapping[str, Any], workdir: Path, sabotage: str | None = None) -> Outcome:
    """Load, plan and run ``case`` under its faults; return what broke (if anything)."""
    from placer.errors import PlacerError

    verdict = judge(case["truth"])
    day = decision_day(case)
    paths = materialize(case, workdir, day)
    try:
        with time_limit(LOAD_TIME_LIMIT_S):
            loaded = load_and_plan(paths, sabotage, day)
    except PlacerError as exc:
        return Outcome("refused", f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    except Exception as exc:
        return Outcome("crashed", "while loading or planning", unexpected=_unexpected(exc),
                       why=dict(verdict.why))
    if verdict.refuse:
        return Outcome("accepted", "policies placer must refuse were accepted",
                       violations=[f"accepted: {r}" for r in verdict.refuse])
    plan = loaded[3]
    if plan.status != "placed":
        return Outcome("not-placed", plan.status)
    outcome = Outcome("ran", "", why={})
    placed = {j: p.site for j, p in plan.jobs.items()}
    outcome.notes.append(f"initial plan: {placed}")
    drive(case, loaded, fake_world(case, loaded[1]), workdir, outcome, verdict)
    if outcome.counterexample:
        outcome.why = dict(verdict.why)
    return outcome
