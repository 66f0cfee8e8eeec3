"""``@placer.job``: a plain Python function as a job, run on its site as a Ray job.

The job's command is ``python -m placer.api <module>:<function> --value REF --uri REF …``
(:func:`run_function` is that program): on the site it imports the function's module, shipped
in the job's ``runtime_env`` (``py_modules``: its top-level package's folder; ``working_dir``:
the folder of a module that is one file), calls the function with its inputs in order, and
writes what it returns as JSON to ``<output URI>/value.json`` through the site's store
(:meth:`placer.storage.ObjectStore.put_json`, under the same residency guard as every write
placer makes). An input that is another function job's output is passed as that job's value;
any other input as its URI.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, overload

from placer.api._builder import DatasetRef, JobRef, OutputRef, PipelineBuilder, current_builder
from placer.errors import ExecutionError, PipelineError

__all__ = ["FUNCTION_COMMAND", "VALUE_FILE", "FunctionJob", "job", "read_value",
           "run_function", "storage_endpoints_env"]

FUNCTION_COMMAND = "-m placer.api "
"""What every function job's command holds, after the interpreter."""
VALUE_FILE = "value.json"
ENDPOINTS_ENV = "PLACER_STORAGE_ENDPOINTS"
"""JSON ``{bucket: {"endpoint": URL, "location": the site's location}}`` of the inventory's
on-prem stores (and ``{root: {"root": file:// URI, "location": ...}}`` of its file://
stores), given to function jobs so they write to their site's own store, as
:func:`placer.backends.storage_for` routes it (a bucket on a cloud store needs no entry)."""


class FunctionJob:
    """A function decorated with :func:`job`. Called inside ``with placer.pipeline(...)``, it
    adds a job and returns its :class:`JobRef`; called anywhere else, it is the function."""

    def __init__(self, fn: Callable[..., Any], fields: Mapping[str, Any]) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.fields = dict(fields)

    def __repr__(self) -> str:
        return f"placer.job({self.fn.__module__}.{self.fn.__qualname__})"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        builder = current_builder()
        if builder is None:
            return self.fn(*args, **kwargs)
        if kwargs:
            raise PipelineError(f"{self.fn.__name__}: inside a pipeline, pass its inputs "
                                "positionally; set job fields with p.add(fn, ..., name=...)")
        return self.add_to(builder, *args)

    def add_to(self, builder: PipelineBuilder, *args: Any, **overrides: Any) -> JobRef:
        """Add this function as a job of ``builder``, reading ``args`` in order."""
        fields = {**self.fields, **overrides}
        name = fields.pop("name", None) or self.fn.__name__.replace("_", "-")
        python = fields.pop("python", "python")
        output = fields.pop("output", "result")
        output_size = fields.pop("output_size", 0)
        module, key, path = _shipped(self.fn)
        env = dict(fields.pop("runtime_env", None) or {})
        if fields.get("image"):
            raise PipelineError(f"job {name!r}: a function job ships its module in runtime_env "
                                f"{key}, which Ray does not allow beside an image; use "
                                "runtime_env (pip, env_vars) instead of image")
        if key == "py_modules":
            env["py_modules"] = [*env.get("py_modules", []), path]
        elif env.setdefault("working_dir", path) != path:
            raise PipelineError(f"job {name!r}: module {module!r} is shipped as the job's "
                                f"working_dir ({path}), but runtime_env names another")
        argv = [f"{module}:{self.fn.__qualname__}"]
        inputs: list[DatasetRef | OutputRef] = []
        for arg in args:
            ref = _as_input(arg, name)
            inputs.append(ref)
            as_value = isinstance(ref, OutputRef) and FUNCTION_COMMAND in str(
                builder._jobs.get(ref.job.name, {}).get("command", ""))
            argv += ["--value" if as_value else "--uri", _ref_text(ref)]
        command = f"{python} {FUNCTION_COMMAND}" + " ".join(shlex.quote(a) for a in argv)
        return builder.job(name, command=command, runtime_env=env, inputs=inputs,
                           outputs={output: output_size}, **fields)


@overload
def job(fn: Callable[..., Any], /) -> FunctionJob: ...


@overload
def job(**fields: Any) -> Callable[[Callable[..., Any]], FunctionJob]: ...


def job(fn: Callable[..., Any] | None = None, /,
        **fields: Any) -> FunctionJob | Callable[[Callable[..., Any]], FunctionJob]:
    """Make a plain function a job: ``@placer.job(gpus=1, gpu_types={"T4": "1h"})``.

    ``fields`` are those of :meth:`PipelineBuilder.job` (but ``command``, ``inputs`` and
    ``outputs``), plus ``name`` (default: the function's, ``_`` as ``-``), ``output`` (the
    output's name, default ``result``), ``output_size`` and ``python`` (the interpreter on the
    site, default ``python``). The function's return value must be JSON (``json.dumps``).
    """
    for taken in ("command", "inputs", "outputs"):
        if taken in fields:
            raise PipelineError(f"@placer.job sets {taken} itself; give the function's inputs "
                                "as its arguments")

    def wrap(f: Callable[..., Any]) -> FunctionJob:
        return FunctionJob(f, fields)

    return wrap if fn is None else wrap(fn)


def _shipped(fn: Callable[..., Any]) -> tuple[str, str, str]:
    """The module to import on the site, and how it is shipped: ``py_modules`` with its
    top-level package's folder, or, for a module that is one file, ``working_dir`` with the
    file's folder (the job starts there, so ``python -m`` finds it)."""
    module = fn.__module__
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None)
    if file is None:
        raise PipelineError(f"{fn.__qualname__}: its module {module!r} has no file to ship; "
                            "define the function in a .py file")
    if module == "__main__":  # the script being run: imported on the site by its file name
        return Path(file).stem, "working_dir", str(Path(file).resolve().parent)
    top = sys.modules[module.partition(".")[0]]
    paths = list(getattr(top, "__path__", []))
    if not paths:
        return module, "working_dir", str(Path(file).resolve().parent)
    if len(paths) > 1:
        raise PipelineError(f"{fn.__qualname__}: package {top.__name__!r} spans several "
                            "folders; Ray ships one")
    return module, "py_modules", str(Path(paths[0]).resolve())


def _as_input(arg: Any, job_name: str) -> DatasetRef | OutputRef:
    if isinstance(arg, DatasetRef | OutputRef):
        return arg
    if isinstance(arg, JobRef):
        return arg.output()
    raise PipelineError(f"job {job_name!r}: an argument is a dataset, a job or a job's output "
                        f"(what p.dataset, p.job or another job function returned), not "
                        f"{type(arg).__name__} {arg!r}")


def _ref_text(ref: DatasetRef | OutputRef) -> str:
    return ref.name if isinstance(ref, DatasetRef) else f"{ref.job.name}.{ref.name}"


def storage_endpoints_env(sites: Sequence[Any]) -> dict[str, str]:
    """``{PLACER_STORAGE_ENDPOINTS: …}`` for the inventory's on-prem stores (none: empty)."""
    found = {s.storage.partition("://")[2].partition("/")[0]: {
        "endpoint": s.storage_endpoint, "location": s.location.model_dump(mode="json")}
        for s in sites if s.storage and s.storage_endpoint}
    # A file:// store (placer.filestore) by its root: where the site is.
    found.update({s.storage: {"root": s.storage, "location": s.location.model_dump(mode="json")}
                  for s in sites if s.storage and s.storage.startswith("file://")})
    return {ENDPOINTS_ENV: json.dumps(found, sort_keys=True)} if found else {}


# -- on the site ----------------------------------------------------------------------------------
def _store(uri: str) -> Any:
    """The store that holds ``uri``'s bucket: the site's own (by endpoint) or the cloud's."""
    from placer.backends import storage_backends
    from placer.models import Location

    scheme, _, rest = uri.partition("://")
    backend = storage_backends().get(scheme)
    if backend is None:
        raise ExecutionError(f"no storage backend for {uri!r} is installed where the job runs")
    endpoints = json.loads(os.environ.get(ENDPOINTS_ENV) or "{}")
    if getattr(backend, "by_path", False):  # a site's file:// store: the one holding the path
        for own in endpoints.values():
            store = (backend(root=own["root"], onprem_location=Location.model_validate(
                own["location"])) if "root" in own else None)
            if store is not None and store.holds(uri):
                return store
        raise ExecutionError(f"{uri}: under no site's {scheme}:// store")
    bucket = rest.partition("/")[0]
    if bucket in endpoints:
        own = endpoints[bucket]
        return backend(endpoint_url=own["endpoint"],
                       onprem_location=Location.model_validate(own["location"]))
    return backend()


def read_value(output_uri: str) -> Any:
    """What a function job returned, read from its output URI (where it was written, or its
    verified copy in a consumer's location)."""
    uri = output_uri.rstrip("/") + "/" + VALUE_FILE
    return _store(uri).get_json(uri)


def run_function(argv: Sequence[str]) -> int:
    """The program a function job runs: import, call, write the value (see the module doc)."""
    target, args = argv[0], list(argv[1:])
    module, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    fn = obj.fn if isinstance(obj, FunctionJob) else obj
    inputs = json.loads(os.environ["PLACER_INPUTS"])
    outputs = json.loads(os.environ["PLACER_OUTPUTS"])
    location = os.environ["PLACER_LOCATION"]
    values = []
    for kind, ref in zip(args[::2], args[1::2], strict=True):
        uri = inputs[ref]
        values.append(read_value(uri) if kind == "--value" else uri)
    result = fn(*values)
    [uri] = outputs.values()
    dst = uri.rstrip("/") + "/" + VALUE_FILE
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        print(f"placer: {target} returned a {type(result).__name__}, which is not JSON: {exc}",
              file=sys.stderr)
        return 1
    _store(dst).put_json(dst, result, allowed={location})
    print(f"placer: {target} returned a {type(result).__name__}; written to {dst}")
    return 0
