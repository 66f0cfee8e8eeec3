"""A fake Kubernetes API server on 127.0.0.1, for what the real control plane of ``tests/k8s``
cannot be made to do: move a RayJob (it runs no KubeRay operator) and answer node and pod lists
a test writes by hand (odd GPU figures, unreadable answers).

It speaks just enough of the API for those calls (create/get/delete RayJobs, list pods by
label, read a pod's log, list every node and pod as a test sets them), answers with the JSON
shapes and ``Status`` errors a real API server sends, and records every request. A tiny
"kubelet" really runs each RayJob's entrypoint as a local process when it is first observed, so
its state and log come from running what the manifest says. Batch Jobs, scheduling and
validation are the real control plane's (``tests/k8s``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

_OBJ = re.compile(r"^/apis/ray\.io/v1/namespaces/([^/]+)/rayjobs(?:/([^/]+))?$")
_PODS = re.compile(r"^/api/v1/namespaces/([^/]+)/pods(?:/([^/]+)/log)?$")
_CLUSTER_LISTS = {"/api/v1/nodes": "node_list", "/api/v1/pods": "pod_list"}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: str
    created: str


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


@dataclass
class FakeKubeAPI:
    """State of the fake cluster; ``token`` (if set) is the only bearer token it accepts."""

    token: str | None = None
    requests: list[Request] = field(default_factory=list)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    node_list: dict[str, Any] | None = None
    """What ``GET /api/v1/nodes`` answers (a ``NodeList``, as a test sets it)."""
    pod_list: dict[str, Any] | None = None
    """What ``GET /api/v1/pods`` (every namespace) answers (a ``PodList``)."""
    _seq: int = 0

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeKubeAPI:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                req = Request(self.command, url.path, parse_qs(url.query), headers,
                              json.loads(raw) if raw else None)
                with api.lock:
                    api.requests.append(req)
                    code, payload = api.handle(req)
                data = payload.encode() if isinstance(payload, str) else json.dumps(
                    payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain" if isinstance(payload, str)
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        for pod in self.pods.values():
            if pod.proc.poll() is None:
                pod.proc.kill()
            pod.proc.wait()
            Path(pod.log).unlink(missing_ok=True)
        self.pods.clear()

    # -- the API -------------------------------------------------------------------------------
    def handle(self, req: Request) -> tuple[int, Any]:
        if self.token is not None and req.headers.get("authorization") != f"Bearer {self.token}":
            return 401, status(401, "Unauthorized", "Unauthorized")
        if m := _OBJ.match(req.path):
            return self._object(req, "rayjobs", m.group(1), m.group(2))
        if m := _PODS.match(req.path):
            return self._pods(req, m.group(1), m.group(2))
        listed = getattr(self, _CLUSTER_LISTS.get(req.path, "_none"), None)
        if req.method == "GET" and listed is not None:
            return 200, listed
        return 404, status(404, "NotFound", "the server could not find the requested resource")

    def _object(self, req: Request, plural: str, ns: str, name: str | None) -> tuple[int, Any]:
        if req.method == "POST":
            name = req.body["metadata"]["name"]
            key = (plural, ns, name)
            if key in self.objects:
                return 409, status(409, "AlreadyExists", f'{plural} "{name}" already exists')
            self._seq += 1
            obj = json.loads(json.dumps(req.body))
            obj["metadata"].update(uid=f"uid-{self._seq}", resourceVersion=str(self._seq),
                                   creationTimestamp=f"2026-01-01T00:00:{self._seq:02d}Z")
            obj["status"] = {}
            self.objects[key] = obj
            return 201, obj
        assert name is not None
        key = (plural, ns, name)
        if key not in self.objects:
            return 404, status(404, "NotFound", f'{plural} "{name}" not found')
        if req.method == "DELETE":
            obj = self.objects.pop(key)
            for pod in self.pods.values():
                if pod.labels.get("owner") == name and pod.proc.poll() is None:
                    pod.proc.kill()
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success",
                         "details": {"name": name, "kind": plural, "uid": obj["metadata"]["uid"]}}
        obj = self.objects[key]
        self._kubelet(ns, obj)
        return 200, obj

    def _kubelet(self, ns: str, obj: dict[str, Any]) -> None:
        """Start the submitter pod on first sight; report its process's outcome afterwards."""
        name = obj["metadata"]["name"]
        pod = self.pods.get(name)
        if pod is None:
            # KubeRay's submitter Job runs `ray job submit -- <entrypoint>`.
            labels = {"batch.kubernetes.io/job-name": name, "job-name": name, "owner": name}
            with tempfile.NamedTemporaryFile(prefix="fake-pod-", suffix=".log",
                                             delete=False) as log:
                proc = subprocess.Popen(["/bin/sh", "-c", obj["spec"]["entrypoint"]],
                                        stdout=log, stderr=subprocess.STDOUT,
                                        env={"PATH": os.environ["PATH"]})
            self.pods[name] = Pod(f"{name}-abcde", ns, labels, proc, log.name,
                                  obj["metadata"]["creationTimestamp"])
            obj["status"] = {"jobDeploymentStatus": "Initializing"}
            return
        code = pod.proc.poll()
        job_status = "RUNNING" if code is None else "SUCCEEDED" if code == 0 else "FAILED"
        obj["status"] = {"jobStatus": job_status, "jobDeploymentStatus":
                         "Running" if code is None else "Complete"}

    def _pods(self, req: Request, ns: str, log_of: str | None) -> tuple[int, Any]:
        if log_of is not None:
            for pod in self.pods.values():
                if pod.name == log_of and pod.namespace == ns:
                    with open(pod.log) as f:
                        return 200, f.read()
            return 404, status(404, "NotFound", f'pods "{log_of}" not found')
        selector = dict(s.split("=", 1) for s in req.query.get("labelSelector", [""])[0].split(",")
                        if s)
        items = [{"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": p.name, "namespace": p.namespace, "labels": p.labels,
                               "creationTimestamp": p.created}}
                 for p in self.pods.values()
                 if p.namespace == ns and all(p.labels.get(k) == v for k, v in selector.items())]
        return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items}
