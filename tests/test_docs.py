"""Docs that run: every command and snippet in README.md and docs/*.md runs here (issue 14).

Each Markdown file is one test, its fenced blocks run in document order in a private working
folder that holds copies of ``examples/``, ``policies/`` and ``benchmarks/`` (so a command that
writes ``plan.json`` writes it there, and a later block of the same file reads it back):

* a shell block (```` ```bash ````, ```` ```sh ````, ```` ```console ````, ```` ```shell ````,
  or an unlabelled block with a line starting ``placer``, ``pip``, ``python``, ``ray`` or
  ``kubectl``): each ``placer`` command runs through the CLI in this process (typer's
  ``CliRunner``) and must exit 0, or N when the line ends in a comment ``# exit N: why``;
  ``> FILE`` writes its stdout; ``~`` is the working folder, which is also ``$HOME`` (so the
  decision log and journal are where a new user's would be, ``~/.local/share/placer/``);
  ``cp`` and ``mkdir`` run as they are; a ``python`` script of the repository runs in a
  subprocess. Other programs are not run and must be listed in :data:`NOT_RUN` with the reason
  (``ray up`` needs a cloud account, ...). A placeholder (``...``, ``…``) in a ``placer``
  command fails the test: write the real command, or mark the block.
* a ```` ```python ```` block is executed; a file's Python blocks share one namespace.
* other blocks (YAML, JSON, diagrams, output shown as ``text``) are not run here; the YAML of
  docs/policy-reference.md runs in tests/policy/test_reference_doc.py.

A block that cannot run here is marked by an HTML comment on the line before its fence:

``<!-- docs-test: cloud -->``
    needs a cloud account or a running cluster: Python is only parsed (``ast.parse``); each
    ``placer`` command only parsed by the CLI (the command, its flags, argument count and
    value types exist, exactly as ``placer ... --help`` would check), never run.
``<!-- docs-test: slow -->``
    runs longer than this test may take (minutes of replay): parsed only, like ``cloud``.
``<!-- docs-test: e2e tests/test_x.py -->``
    covered end to end by that test (which must exist): parsed only, like ``cloud``.
``<!-- docs-test: exit=N -->``
    every ``placer`` command of the block must exit with N instead of 0.
``<!-- docs-test: skip REASON -->``
    not run and not parsed; the reason is required. Use sparingly.

A second test checks that every relative link of these files points to a file that exists
(and that git does not ignore, so a fresh clone has it) and every ``#anchor`` to a heading of
its target, and that a repository path written in backticks (``placer/cli.py``) exists.
New files under docs/ (any depth) are found by a glob: they need no registration here.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
COPIED = ("examples", "policies", "benchmarks")  # the working folder's copies of the repo
SHELL_LANGS = {"bash", "sh", "shell", "console", "zsh"}
# A line starting with one of these makes an unlabelled block a shell block.
PROGRAMS = ("placer", "pip", "python", "ray", "kubectl", "cp", "mkdir")
AS_IS = ("cp", "mkdir")  # run as they are, in the working folder
COMMAND_S = 60.0  # a documented command that runs longer is marked slow
# Programs a doc may show that this test does not run, and why (anything else fails the test).
NOT_RUN = {
    "pip": "installs the package this suite runs from",
    "ray": "starts or launches a Ray cluster: needs machines or a cloud account",
    "kubectl": "needs a Kubernetes cluster",
    "pytest": "the suite itself",
}
MARKS = {"cloud", "slow", "e2e", "exit", "skip"}
PARSE_ONLY = {"cloud", "slow", "e2e"}
MARK_RE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<word>[a-z0-9]+)(?:=(?P<value>\S+))?"
                     r"\s*(?P<rest>.*?)\s*-->\s*$")
EXIT_RE = re.compile(r"\s#\s*exit\s+(?P<code>\d+)\b")
FENCE_RE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts (the fence's line), its language and mark."""

    path: Path
    line: int
    lang: str
    body: str
    mark: str | None = None
    mark_value: str = ""

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def kind(self) -> str:
        """``shell``, ``python`` or ``other`` (not run here)."""
        if self.lang in SHELL_LANGS:
            return "shell"
        if self.lang == "python":
            return "python"
        if self.lang == "" and any(_first_word(ln) in PROGRAMS for ln in self.body.splitlines()):
            return "shell"
        return "other"


def _first_word(line: str) -> str:
    words = line.strip().removeprefix("$ ").split(maxsplit=1)
    return words[0] if words else ""


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, each with the docs-test mark just before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        start, indent, fence = i, len(m["indent"]), m["fence"]
        body: list[str] = []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence)
                                      and lines[i].strip().strip(fence[0]) == ""):
            # a fence indented in a list item: its lines lose that much indentation
            body.append(lines[i][indent:] if not lines[i][:indent].strip() else lines[i].lstrip())
            i += 1
        i += 1
        prev = next((ln for ln in reversed(lines[:start]) if ln.strip()), "")
        mark = MARK_RE.match(prev)
        word, value = (None, "") if mark is None else (mark["word"], mark["value"] or mark["rest"])
        out.append(Block(path, start + 1, m["lang"], "\n".join(body), word, value))
    return out


# --- shell ----------------------------------------------------------------------------------

@dataclass
class Command:
    """One simple command of a shell line: its words, where its stdout goes, what it reads."""

    words: list[str]
    stdout_to: str | None = None
    piped_in: bool = False
    text: str = ""


@dataclass
class Outcome:
    failures: list[str] = field(default_factory=list)
    ran: int = 0


def command_lines(block: Block) -> list[str]:
    """The block's command lines: continuations joined, prompts and console output dropped."""
    raw = block.body.splitlines()
    if block.lang == "console":
        raw = [ln.removeprefix("$ ") for ln in raw if ln.startswith("$ ")]
    out: list[str] = []
    pending = ""
    for ln in raw:
        ln = ln.rstrip()
        if ln.endswith("\\"):
            pending += ln[:-1] + " "
            continue
        ln = (pending + ln).strip()
        pending = ""
        if ln and not ln.startswith("#"):
            out.append(ln)
    return out


def commands(line: str) -> list[Command]:
    """A shell line split at ``&&``, ``;``, ``||`` and ``|``, with ``> FILE`` redirections."""
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    out: list[Command] = []
    current = Command([])
    redirect = False
    for tok in lex:
        if redirect:
            current.stdout_to, redirect = tok, False
        elif tok in (">", ">>"):
            redirect = True
        elif tok in ("&&", ";", "||", "|"):
            out.append(current)
            current = Command([], piped_in=tok == "|")
        else:
            current.words.append(tok)
    out.append(current)
    for c in out:
        c.text = shlex.join(c.words)
    return [c for c in out if c.words]


def expand(words: list[str], cwd: Path) -> list[str]:
    """Shell globbing, relative to ``cwd`` (a pattern that matches nothing stays as written)."""
    out: list[str] = []
    for w in words:
        if any(ch in w for ch in "*?[") and not w.startswith("-"):
            hits = sorted(str(p.relative_to(cwd)) for p in cwd.glob(w))
            out.extend(hits or [w])
        else:
            out.append(w)
    return out


def parse_cli(args: list[str]) -> None:
    """Parse a ``placer`` command line as the CLI would, without running it.

    Raises the CLI's usage error for an unknown command or flag, a missing or extra argument,
    or a value of the wrong type.
    """
    import typer

    from placer.cli import app

    cmd: Any = typer.main.get_command(app)
    name, parent = "placer", None
    while True:
        ctx = cmd.make_context(name, list(args), parent=parent)
        if not hasattr(cmd, "resolve_command"):  # a leaf command: parsed
            return
        rest = [*ctx._protected_args, *ctx.args]
        if not rest:
            return
        name, cmd, args = cmd.resolve_command(ctx, rest)
        parent = ctx


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise TimeoutError in this (the main) thread after ``seconds``: a documented command
    that waits forever (``--wait`` with no cluster) fails the test instead of hanging it."""
    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds:g} s: mark the block slow or cloud")

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_shell(block: Block, cwd: Path, outcome: Outcome) -> None:
    from typer.testing import CliRunner

    from placer.cli import app

    for line in command_lines(block):
        said = EXIT_RE.search(line)
        expected = int(said["code"]) if said else int(block.mark_value) \
            if block.mark == "exit" else 0
        stdin: str | None = None
        for cmd in commands(line):
            prog, where = cmd.words[0], f"{block.where}: `{cmd.text}`"
            words = [os.path.expanduser(w) for w in expand(cmd.words, cwd)]
            if prog == "placer":
                if any(w in ("...", "…") or w.startswith("…") for w in words):
                    outcome.failures.append(f"{where}: a placeholder; write the real command "
                                            "or mark the block (see tests/test_docs.py)")
                    continue
                if block.mark in PARSE_ONLY:
                    try:
                        parse_cli(words[1:])
                    except Exception as err:  # typer's vendored click raises its own errors
                        msg = err.format_message() if hasattr(err, "format_message") else err
                        outcome.failures.append(f"{where}: does not parse: {msg}")
                    continue
                with _deadline(COMMAND_S):
                    res = CliRunner().invoke(app, words[1:],
                                             input=stdin if cmd.piped_in else None)
                outcome.ran += 1
                stdin = res.stdout
                if res.exit_code != expected:
                    tail = "\n    ".join(res.output.strip().splitlines()[-8:])
                    raised = "" if res.exception is None or isinstance(res.exception, SystemExit) \
                        else f" ({type(res.exception).__name__}: {res.exception})"
                    outcome.failures.append(f"{where}: exit {res.exit_code}, the doc implies "
                                            f"{expected}{raised}\n    {tail}")
                elif cmd.stdout_to:
                    (cwd / cmd.stdout_to).write_text(res.stdout, encoding="utf-8")
            elif prog in AS_IS and block.mark not in PARSE_ONLY:
                proc = subprocess.run(words, cwd=cwd, capture_output=True, text=True,
                                      check=False, timeout=60)
                if proc.returncode:
                    outcome.failures.append(f"{where}: exit {proc.returncode}: {proc.stderr}")
            elif prog in AS_IS:
                continue
            elif prog == "python" and words[1:2] == ["-m"] and words[2:3] == ["pytest"]:
                continue  # NOT_RUN["pytest"]
            elif prog == "python" and len(words) > 1 and (cwd / words[1]).is_file():
                if block.mark in PARSE_ONLY:
                    ast.parse((cwd / words[1]).read_text(encoding="utf-8"))
                    continue
                env = {**os.environ,
                       "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "backends")])}
                proc = subprocess.run([sys.executable, *words[1:]], cwd=cwd, env=env,
                                      capture_output=True, text=True, check=False, timeout=120)
                outcome.ran += 1
                if proc.returncode != expected:
                    outcome.failures.append(f"{where}: exit {proc.returncode}\n"
                                            f"    {proc.stderr.strip()[-600:]}")
            elif prog not in NOT_RUN:
                outcome.failures.append(f"{where}: `{prog}` is neither run by tests/test_docs.py "
                                        "nor listed in its NOT_RUN with a reason")


# --- python ---------------------------------------------------------------------------------

def run_python(block: Block, namespace: dict[str, Any], outcome: Outcome) -> None:
    # Pad with blank lines so a traceback's line numbers are the Markdown file's.
    source = "\n" * block.line + block.body
    try:
        code = compile(source, str(block.path), "exec")
    except SyntaxError as exc:
        outcome.failures.append(f"{block.where}: does not parse: {exc}")
        return
    if block.mark in PARSE_ONLY:
        return
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(code, namespace)
    except Exception as exc:
        outcome.failures.append(f"{block.where}: {type(exc).__name__}: {exc}")
    outcome.ran += 1


# --- the tests ------------------------------------------------------------------------------

@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with copies of the repo's examples, policies and benchmarks; cwd."""
    for name in COPIED:
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("out", "__pycache__"))
    monkeypatch.chdir(tmp_path)
    # A new user's defaults, under this folder: ~/.local/share/placer/{journal.db,decisions.jsonl}
    # (matplotlib keeps its font cache where it was: rebuilding it takes seconds).
    for xdg, default in (("XDG_CACHE_HOME", ".cache"), ("XDG_CONFIG_HOME", ".config")):
        monkeypatch.setenv(xdg, os.environ.get(xdg) or str(Path.home() / default))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("PLACER_JOURNAL", raising=False)
    monkeypatch.delenv("PLACER_DECISIONS", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def _check_mark(block: Block) -> str | None:
    if block.mark is None:
        return None
    if block.mark not in MARKS:
        return f"{block.where}: unknown docs-test mark {block.mark!r} (one of {sorted(MARKS)})"
    if block.mark == "skip" and not block.mark_value:
        return f"{block.where}: `docs-test: skip` needs a reason"
    if block.mark == "exit" and not block.mark_value.isdigit():
        return f"{block.where}: `docs-test: exit=N` needs a number"
    if block.mark == "e2e" and not (ROOT / block.mark_value).is_file():
        return f"{block.where}: `docs-test: e2e` names {block.mark_value!r}, which is not a file"
    return None


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_commands_and_snippets_of_a_doc_run(doc: Path, workdir: Path) -> None:
    outcome = Outcome()
    namespace: dict[str, Any] = {"__name__": f"docs_{doc.stem}"}
    for block in blocks(doc):
        if problem := _check_mark(block):
            outcome.failures.append(problem)
            continue
        if block.mark == "skip":
            continue
        if block.kind == "shell":
            run_shell(block, workdir, outcome)
        elif block.kind == "python":
            run_python(block, namespace, outcome)
    assert not outcome.failures, "\n".join(outcome.failures)


def test_blocks_are_found_and_classified() -> None:
    """The collector sees what a reader sees: the README's commands and its Python example."""
    readme = blocks(ROOT / "README.md")
    assert any(b.kind == "python" for b in readme)
    shell = [b for b in readme if b.kind == "shell"]
    assert any(cmd.words[0] == "placer" for b in shell for ln in command_lines(b)
               for cmd in commands(ln))
    # a diagram naming placer's modules is not a shell block
    assert Block(ROOT, 1, "", " placer.policy.evaluate → JobEligibility").kind == "other"
    assert [c.words for c in commands("placer plan a.yaml --json > plan.json | kubectl x")] == [
        ["placer", "plan", "a.yaml", "--json"], ["kubectl", "x"]]


def test_the_parse_only_check_refuses_an_unknown_flag_and_command() -> None:
    parse_cli(["plan", "pipeline.yaml", "--json"])
    for bad in (["plan", "pipeline.yaml", "--no-such-flag"], ["no-such-command"],
                ["policy", "diff"]):
        with pytest.raises(Exception, match=r"No such|Missing"):
            parse_cli(bad)


# --- links ----------------------------------------------------------------------------------

LINK_RE = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
CODE_PATH_RE = re.compile(r"`(?P<path>(?:placer|tests|docs|backends|benchmarks|examples|policies)"
                          r"/[\w./-]*(?:\.[a-z]+|/))`")


def _prose(path: Path) -> str:
    """The file without its fenced blocks (links and headings in code are not links)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    keep, inside = [], None
    for ln in lines:
        m = FENCE_RE.match(ln)
        if inside is None and m:
            inside = m["fence"]
        elif inside is not None and ln.strip().startswith(inside) and not ln.strip().strip("`~"):
            inside = None
        elif inside is None:
            keep.append(ln)
    return "\n".join(keep)


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, ``-1``
    ``-2`` … for repeats."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", _prose(path), re.M):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m[1])  # a link's text only
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    out.update(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", _prose(path)))  # explicit anchors
    return out


def test_slugs_are_githubs() -> None:
    assert "placer-policy-lint" in anchors(ROOT / "docs" / "policy-reference.md")
    assert "approved-transforms-removes_tags" in anchors(ROOT / "docs" / "policy-reference.md")


def _git_ignored(paths: list[Path]) -> list[Path]:
    """Those of ``paths`` git ignores (there locally, missing from a fresh clone)."""
    inside = [str(p.relative_to(ROOT)) for p in paths if p.is_relative_to(ROOT)]
    if not inside or shutil.which("git") is None or not (ROOT / ".git").exists():
        return []
    res = subprocess.run(["git", "check-ignore", *inside], cwd=ROOT,
                         capture_output=True, text=True, check=False, timeout=30)
    return [ROOT / line for line in res.stdout.splitlines()]


def link_problems(doc: Path) -> list[str]:
    """Relative links to no file or no heading, and repository paths that do not exist."""
    text = _prose(doc)
    problems: list[str] = []
    found: list[Path] = []
    for m in LINK_RE.finditer(text):
        target = m["target"].strip("<>")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        dest = (doc.parent / file).resolve() if file else doc
        if not dest.exists():
            problems.append(f"{target}: no such file")
            continue
        found.append(dest)
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: no heading #{anchor} in {dest.name}")
    for m in CODE_PATH_RE.finditer(text):
        if not (ROOT / m["path"]).exists():
            problems.append(f"`{m['path']}`: no such file in the repository")
        else:
            found.append(ROOT / m["path"])
    problems += [f"{p.relative_to(ROOT)}: ignored by git, so not in a clone"
                 for p in _git_ignored(found)]
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_paths_point_at_what_exists(doc: Path) -> None:
    problems = link_problems(doc)
    assert not problems, f"{doc.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_a_broken_link_anchor_or_path_is_reported(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("# Title\n\n## Two words\n[a](x.md#two-words) [b](x.md#three) [c](gone.md)"
                   " [d](https://example.com/gone) `placer/no_such.py` `placer/cli.py`\n"
                   "```\n[e](inside-a-block.md)\n```\n")
    assert link_problems(doc) == ["x.md#three: no heading #three in x.md", "gone.md: no such file",
                                  "`placer/no_such.py`: no such file in the repository"]


# --- the runner itself can fail -------------------------------------------------------------

def _outcome(body: str, lang: str = "", mark: str | None = None, value: str = "",
             cwd: Path | None = None) -> Outcome:
    block = Block(ROOT / "docs" / "x.md", 1, lang, body, mark, value)
    outcome = Outcome()
    if block.kind == "python":
        run_python(block, {}, outcome)
    else:
        run_shell(block, cwd or ROOT, outcome)
    return outcome


def test_the_runner_reports_what_a_reader_would_meet(workdir: Path) -> None:
    qs = "examples/quickstart"
    assert _outcome(f"placer validate {qs}/pipeline.yaml", cwd=workdir).failures == []
    missing = _outcome("placer plan no-such.yaml", cwd=workdir).failures
    assert len(missing) == 1 and "exit 2, the doc implies 0" in missing[0]
    assert _outcome("placer plan no-such.yaml   # exit 2: no file", cwd=workdir).failures == []
    assert _outcome("placer plan no-such.yaml", mark="exit", value="2",
                    cwd=workdir).failures == []
    assert "placeholder" in _outcome("placer plan ... --json", cwd=workdir).failures[0]
    assert "NOT_RUN" in _outcome("curl https://example.com", lang="bash").failures[0]
    assert _outcome("kubectl apply -f x.yaml", lang="bash").failures == []
    # parse-only marks: the command must still exist, with its flags
    assert _outcome("placer submit p.yaml --inventory i.yaml --wait", mark="cloud").failures == []
    assert "No such option" in _outcome("placer submit p.yaml --wiat", mark="cloud").failures[0]
    # Python: run, or only parsed when marked
    assert "NameError" in _outcome("evaluate(pipeline)", lang="python").failures[0]
    assert _outcome("evaluate(pipeline)", lang="python", mark="cloud").failures == []
    assert "does not parse" in _outcome("def f(:", lang="python", mark="cloud").failures[0]
    # > FILE writes stdout where the next command reads it
    assert _outcome(f"placer plan {qs}/pipeline.yaml --json > p.json\nplacer explain p.json",
                    cwd=workdir).failures == []
    assert (workdir / "p.json").read_text().startswith("{")


def test_a_command_that_never_ends_fails_instead_of_hanging() -> None:
    import time

    with pytest.raises(TimeoutError, match="mark the block slow"), _deadline(0.05):
        time.sleep(5)


def test_cluster_spec_errors_name_the_flag_that_fixes_them(workdir: Path) -> None:
    """Issue 14: the kubernetes.md example failed without --job and the error did not say so."""
    from typer.testing import CliRunner

    from placer.cli import app

    qs = "examples/quickstart"
    run = CliRunner().invoke
    res = run(app, ["plan", f"{qs}/pipeline.yaml", "--inventory", f"{qs}/inventory.yaml",
                    "--policies", "policies/", "--json"])
    assert res.exit_code == 0, res.output
    (workdir / "plan.json").write_text(res.stdout)
    base = ["cluster-spec", "plan.json", "--inventory", f"{qs}/inventory.yaml"]
    res = run(app, [*base, "--site", "fra-dc"])  # four jobs there, on A100s and V100s
    assert res.exit_code == 2
    assert "differ in GPU type or spot" in res.output and "--job" in res.output
    assert "deidentify: V100" in res.output
    res = run(app, [*base, "--site", "aws-us-east-1", "--job", "finetune"])
    assert res.exit_code == 2 and "runs on 'fra-dc'" in res.output
    assert "--job one of: tokenize" in res.output
    res = run(app, [*base, "--site", "gcp-us-central1"])
    assert res.exit_code == 2 and "--site one of: aws-us-east-1, fra-dc" in res.output
    res = run(app, [*base, "--site", "aws-us-east-1", "--format", "raycluster"])
    assert res.exit_code == 2 and "needs --image IMAGE" in res.output
    res = run(app, [*base, "--site", "aws-us-east-2"])
    assert res.exit_code == 2 and "--site one of: fra-dc, aws-us-east-1," in res.output
