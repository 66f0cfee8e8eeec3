"""A Kubernetes cluster's GPUs as :class:`placer.backends.GpuCapacity`: nodes and pods, read.

Pure functions over the API's own JSON (a ``NodeList`` and a ``PodList`` as the API server sends
them), so the rule is tested on real object shapes without a cluster; the backend does the
reading (:meth:`placer_k8s.KubernetesBackend.gpus`).

* A node counts if it is ``Ready``, not cordoned (``spec.unschedulable``) and allocates GPUs
  (``status.allocatable["nvidia.com/gpu"]``): allocatable, not capacity, is what the scheduler
  hands out.
* A pod holds GPUs on its node (``spec.nodeName``) until it ends (phase ``Succeeded`` or
  ``Failed``); what it holds is its effective request as the scheduler computes it: the larger
  of its containers' sum and its largest init container, plus its sidecars (init containers
  with ``restartPolicy: Always``). A container's GPU request is its ``requests``, else its
  ``limits`` (for extended resources Kubernetes sets the one from the other).
* A pod not yet bound to a node (phase ``Pending``, no ``spec.nodeName``) is work waiting: one
  pending request of its GPUs (a pod runs on one node), in the scheduler's queue order
  (``spec.priority``, then age). A pod larger than every node is left out: it never runs.

Refused (``ValueError``/``KeyError``/``TypeError``; the backend turns it into a
:class:`~placer.errors.BackendError`), never guessed: a list that is not one, a GPU quantity
that is not a whole number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from placer.backends import GpuCapacity, NodeGpus

GPU: str = "nvidia.com/gpu"
_ENDED = frozenset({"Succeeded", "Failed"})


def _quantity(value: Any, where: str) -> int:
    """A GPU quantity (``"8"`` or ``8``): whole GPUs only (the scheduler allows no fraction)."""
    if isinstance(value, bool):
        raise TypeError(f"{where}: GPU quantity {value!r}")
    if isinstance(value, int):
        got = value
    elif isinstance(value, str) and value.isdigit():
        got = int(value)
    else:
        raise ValueError(f"{where}: GPU quantity {value!r} is not a whole number")
    return got


def _container_gpus(container: Mapping[str, Any], where: str) -> int:
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        value = (resources.get(part) or {}).get(GPU)
        if value is not None:
            return _quantity(value, f"{where} container {container.get('name')}")
    return 0


def pod_gpus(pod: Mapping[str, Any]) -> int:
    """The GPUs a pod holds while it runs (its effective request, see the module)."""
    meta = pod.get("metadata") or {}
    where = f"pod {meta.get('namespace')}/{meta.get('name')}"
    spec = pod["spec"]
    app = sum(_container_gpus(c, where) for c in spec.get("containers") or ())
    init = [c for c in spec.get("initContainers") or () if c.get("restartPolicy") != "Always"]
    sidecars = sum(_container_gpus(c, where) for c in spec.get("initContainers") or ()
                   if c.get("restartPolicy") == "Always")
    first = max((_container_gpus(c, where) for c in init), default=0)
    return max(app, first) + sidecars


def _ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _items(listed: Mapping[str, Any], kind: str) -> Iterable[Mapping[str, Any]]:
    if listed.get("kind") != kind or not isinstance(listed.get("items"), list):
        raise ValueError(f"the API server's answer is not a {kind}")
    items: list[Mapping[str, Any]] = listed["items"]
    return items


def capacity(nodes: Mapping[str, Any], pods: Mapping[str, Any]) -> GpuCapacity:
    """The cluster's GPUs from a ``NodeList`` and a ``PodList`` (all namespaces).

    A job's GPUs are on one node: a ``batch/v1`` Job is one pod, and a ``RayJob`` on an on-prem
    site (a placement of 0 cloud nodes) is one GPU worker pod (:func:`placer_k8s.ray_job`).
    """
    totals: dict[str, int] = {}
    for node in _items(nodes, "NodeList"):
        name = str(node["metadata"]["name"])
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        gpus = _quantity(allocatable.get(GPU, 0), f"node {name}")
        if gpus and _ready(node) and not (node.get("spec") or {}).get("unschedulable"):
            totals[name] = gpus
    held = dict.fromkeys(totals, 0)
    waiting: list[tuple[int, str, str, int]] = []
    largest = max(totals.values(), default=0)
    for pod in _items(pods, "PodList"):
        phase = (pod.get("status") or {}).get("phase")
        if phase in _ENDED:
            continue
        gpus = pod_gpus(pod)
        if not gpus:
            continue
        bound = (pod.get("spec") or {}).get("nodeName")
        if bound:
            if bound in held:  # a pod on a node left out (not ready, cordoned) holds nothing here
                held[bound] += gpus
        elif phase == "Pending" and gpus <= largest:  # larger: no node can ever take it
            meta = pod.get("metadata") or {}
            waiting.append((-int((pod.get("spec") or {}).get("priority") or 0),
                            str(meta.get("creationTimestamp") or ""), str(meta.get("name")),
                            gpus))
    # the scheduler's queue order: higher priority first, then the older pod
    pending = tuple((w[3],) for w in sorted(waiting))
    out = tuple(NodeGpus(n, t, max(0, t - held[n])) for n, t in sorted(totals.items()))
    return GpuCapacity(total=sum(n.total for n in out), free=sum(n.free for n in out),
                       nodes=out, pending=pending)


# -- a site behind a Kueue queue ----------------------------------------------------------------
def _true(obj: Mapping[str, Any], condition: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == condition and c.get("status") == "True" for c in conditions)


def _flavor_gpus(entries: Iterable[Mapping[str, Any]], key: str, where: str) -> int:
    """GPUs over a ClusterQueue's flavors: ``key`` of each flavor's ``nvidia.com/gpu`` entry."""
    total = 0
    for flavor in entries:
        for resource in flavor.get("resources") or ():
            if resource.get("name") == GPU:
                total += _quantity(resource.get(key, 0), f"{where} flavor {flavor.get('name')}")
    return total


def queue_capacity(cluster_queue: Mapping[str, Any], workloads: Mapping[str, Any],
                   queue: str) -> GpuCapacity:
    """A Kueue-gated site's GPUs: its ClusterQueue's quota, one pool (``nodes=None``).

    Kueue admits a Job only when its ClusterQueue has quota left, so the quota, not the nodes,
    is what bounds placer's jobs there: ``total`` is the ``nominalQuota`` of ``nvidia.com/gpu``
    over the queue's flavors, ``free`` that less ``status.flavorsUsage`` (what admitted
    workloads hold; borrowing beyond the quota counts as none free). Kueue writes that status
    seconds late (seen against Kueue v0.17: a Job already admitted and running, its
    ClusterQueue still at 0), so the use is at least what the namespace's own admitted,
    unfinished Workloads on this ClusterQueue hold. Waiting work is the ``Workload`` objects of
    ``queue`` (a ``WorkloadList`` of the site's namespace) that hold no quota yet and have not
    finished, oldest first: each pod set is ``count`` pods of its GPUs.
    """
    if cluster_queue.get("kind") != "ClusterQueue":
        raise ValueError("the API server's answer is not a ClusterQueue")
    name = f"ClusterQueue {(cluster_queue.get('metadata') or {}).get('name')}"
    groups = (cluster_queue.get("spec") or {}).get("resourceGroups") or ()
    total = sum(_flavor_gpus(g.get("flavors") or (), "nominalQuota", name) for g in groups)
    reported = _flavor_gpus((cluster_queue.get("status") or {}).get("flavorsUsage") or (),
                            "total", name)
    cq_name = (cluster_queue.get("metadata") or {}).get("name")
    admitted = 0
    waiting: list[tuple[str, str, tuple[int, ...]]] = []
    for wl in _items(workloads, "WorkloadList"):
        if _true(wl, "Finished"):
            continue
        spec, meta = wl.get("spec") or {}, wl.get("metadata") or {}
        bundles: list[int] = []
        for pod_set in spec.get("podSets") or ():
            gpus = pod_gpus({"metadata": meta, "spec": (pod_set.get("template") or {}).get(
                "spec") or {}})
            bundles += [gpus] * int(pod_set.get("count") or 0) if gpus else []
        if _true(wl, "QuotaReserved"):
            admission = (wl.get("status") or {}).get("admission") or {}
            if admission.get("clusterQueue") == cq_name:
                admitted += sum(bundles)
        elif spec.get("queueName") == queue and bundles:
            waiting.append((str(meta.get("creationTimestamp") or ""), str(meta.get("name")),
                            tuple(bundles)))
    used = max(reported, admitted)
    return GpuCapacity(total=total, free=max(0, total - used),
                       pending=tuple(w[2] for w in sorted(waiting)))
