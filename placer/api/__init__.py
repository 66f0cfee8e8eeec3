"""The Python API: pipelines built in code, functions as jobs, submit and a run handle.

    >>> import placer
    >>> p = placer.pipeline("nlp")
    >>> web = p.dataset("web", uri="s3://corpora/web/", size="2TB", location="aws:us-east-1")
    >>> tok = p.job("tokenize", command="python -m nlp.tokenize", gpu_types={"T4": "3h"},
    ...             inputs=[web], outputs={"shards": "600GB"})
    >>> train = p.job("train", command="python -m nlp.train", gpu_types={"A100-80GB": "5h"},
    ...               inputs=[tok.output("shards")], gpus=8)
    >>> [j.inputs for j in p.build().jobs]
    [('web',), ('tokenize.shards',)]

One room per concern:

* ``_builder``: :class:`PipelineBuilder` and its handles, :func:`dump_pipeline` (models → YAML);
* ``_function``: :func:`job`, a plain function as a job, and the program it runs on the site
  (``python -m placer.api``);
* ``_submit``: :func:`submit` (plan and run in one call) and :class:`Run`.
"""

from __future__ import annotations

from placer.api._builder import (
    DatasetRef,
    JobRef,
    OutputRef,
    PipelineBuilder,
    current_builder,
    dump_pipeline,
    pipeline,
)
from placer.api._function import FunctionJob, job, run_function
from placer.api._submit import Run, drive_until_done, submit

__all__ = [
    "DatasetRef",
    "FunctionJob",
    "JobRef",
    "OutputRef",
    "PipelineBuilder",
    "Run",
    "current_builder",
    "drive_until_done",
    "dump_pipeline",
    "job",
    "pipeline",
    "run_function",
    "submit",
]
