"""The simulator: replays a workload against an on-prem pool and a simulated cloud.

One :func:`simulate` call is one run of one strategy. The run is deterministic: the event
order is total (:mod:`placer.sim.kernel`) and every random draw (provisioning delays) comes
from one generator seeded by ``seed`` and consumed in event order.

What is modelled, and how (the cost model of ``docs/simulator.md``):

* on-prem: ``nodes`` nodes of ``gpus_per_node`` GPUs. A job of up to one node's GPUs runs on
  one node (first-fit: the lowest-numbered node with room; best-fit: the node left fullest);
  a larger job takes whole free nodes. The queue discipline is the strategy's: FIFO (the head
  blocks the rest), out-of-order (any queued job that fits starts, in queue order) or EASY
  backfill (the head gets a reservation from the running jobs' estimated ends; later jobs
  start only if they fit now and do not delay it).
* cloud: the job's inputs are staged to the site first; then the nodes are requested, wait
  out the provisioning delay (sampled per launch) and run the job, as the executor does and as
  :mod:`placer.pricing` prices it: the work starts ``transfer + provisioning`` after the
  decision, and the nodes are billed from their request (``decision + transfer``) until the run
  ends or stops. Spot capacity follows the site's availability trace: a spot launch when the
  trace says "unavailable" fails at once; a running spot job is preempted when the trace turns
  unavailable (while its inputs are still staging too: then nothing was billed), keeps its
  progress (it checkpoints) and pays ``restart_overhead_h`` on its next start. Quotas cap the
  GPUs a site runs at once, from the decision on.
* data: a job reads its datasets from the cheapest place holding a ready copy (where they live,
  or a replica) and its dependencies' outputs from where those ran; the source pays egress
  (USD/GB) and the transfer takes GB x hours/GB before the run. A strategy may ask for a copy
  of a dataset at a location (a :class:`~placer.online.Replicate` carried by its decision): the
  copy pays egress once, is ready after its transfer, and is stored until the end of the run at
  ``storage_usd_per_gb_month``. With ``cache_inputs`` every first read at a location leaves
  such a copy, for every strategy.

The :class:`Simulator` is the simulator's implementation of :class:`placer.online.ClusterView`:
strategies see :class:`placer.online.JobRequest` values, never the simulator's own records.

One room per concern, each private: ``_simulator`` (the event loop and the decisions),
``_view`` (what a strategy sees: the ``ClusterView``), ``_queues`` (the pool, the running jobs,
the queue and its three disciplines), ``_data`` (copies, reads, transfers, replicas),
``_cloud`` (cloud runs: launch, refusal, preemption, billing), ``_results`` (what a run
produces) and ``_events`` (event kinds, job states); this module is their public face.
"""

from placer.sim.engine._results import (
    STORAGE_USD_PER_GB_MONTH,
    Attempt,
    JobRecord,
    OnPremConfig,
    Replica,
    SimResult,
)
from placer.sim.engine._simulator import Simulator, simulate

__all__ = [
    "STORAGE_USD_PER_GB_MONTH",
    "Attempt",
    "JobRecord",
    "OnPremConfig",
    "Replica",
    "SimResult",
    "Simulator",
    "simulate",
]
