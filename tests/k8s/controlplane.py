"""A real Kubernetes control plane on loopback for placer's k8s tests (issue 16).

etcd and kube-apiserver (plus kube-controller-manager, kube-scheduler, kwok with its fake GPU
nodes and Kueue when built) run as child processes from the binaries ``tools/k8s/build.sh``
puts in its version-keyed cache. The API server uses a throwaway CA, a static admin token
(group ``system:masters``), a service-account signing key and ``--authorization-mode=RBAC``,
so authentication, RBAC refusals, admission and watches are the real ones, not a hand-written
stand-in.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "tools" / "k8s" / "build.sh"
ADMIN_USER = "placer-admin"
SERVICE_CIDR = "10.0.0.0/24"
KWOK_STAGES = Path(__file__).with_name("kwok-stages.yaml")
KWOK_LABEL = "placer.dev/kwok"  # kwok manages the nodes carrying it, and only those
GPU_PRODUCT = "A100-80GB"  # the nvidia.com/gpu.product label of the fake GPU nodes
GPUS_PER_NODE = 8
# Every container's log, in the CRI log format the kubelet API serves (time, stream, P/F, line).
KWOK_LOG = "".join(f"2026-01-01T00:00:0{i}.000000000Z stdout F {line}\n" for i, line in enumerate(
    ["kwok ran no process for this container", "placer-contract-ok"]))
# Nodes kwok keeps Ready: two GPU nodes, tainted like NVIDIA's GPU operator does, and one plain
# CPU node for jobs that ask for no GPU.
NODES: dict[str, dict[str, Any]] = {
    "gpu-0": {"gpus": GPUS_PER_NODE}, "gpu-1": {"gpus": GPUS_PER_NODE}, "cpu-0": {"gpus": 0},
}


class ControlPlaneError(RuntimeError):
    """The control plane could not be started; the message carries the failing log's tail."""


def install_crds(kubeconfig: Path, paths: list[Path], timeout_s: float = 60.0) -> list[str]:
    """Create the CRDs in ``paths`` (YAML, one each; one already there is kept) and wait until
    each is Established; their names. For CRDs whose controller these tests do not run (KubeRay:
    the API server alone validates the objects against the CRD's schema)."""
    import kubernetes.client
    import kubernetes.config
    import yaml

    deadline = time.monotonic() + timeout_s
    with kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig)) as api:
        ext: Any = kubernetes.client.ApiextensionsV1Api(api)
        names = []
        for path in paths:
            crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)  # MBs: C is 4x faster
            try:
                ext.create_custom_resource_definition(crd)
            except kubernetes.client.ApiException as exc:
                if exc.status != 409:
                    raise
            names.append(crd["metadata"]["name"])
        for name in names:
            while not any(c.type == "Established" and c.status == "True" for c in
                          ext.read_custom_resource_definition(name).status.conditions or []):
                if time.monotonic() > deadline:
                    raise ControlPlaneError(f"CRD {name} not established in {timeout_s:.0f} s")
                time.sleep(0.2)
    return names


def bin_dir() -> Path:
    """The cache folder the build script writes for its default versions (builds nothing)."""
    out = subprocess.run(["bash", str(BUILD_SCRIPT), "--print-bin"], check=True,
                         capture_output=True, text=True)
    return Path(out.stdout.strip())


def missing_binaries(bins: Path, names: tuple[str, ...] = ("etcd", "kube-apiserver")) -> list[str]:
    return [name for name in names if not os.access(bins / name, os.X_OK)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_pki(pki: Path) -> None:
    """CA, API server serving cert (127.0.0.1, localhost, in-cluster names) and the
    service-account signing key, all ECDSA P-256: quick to make and accepted by every piece."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM,
                                 serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "placer-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),  # the `kubernetes` service
        *(x509.DNSName(n) for n in ("localhost", "kubernetes", "kubernetes.default",
                                    "kubernetes.default.svc")),
    ]
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
              .issuer_name(ca_name).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=2))
              .add_extension(x509.SubjectAlternativeName(names), critical=False)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .sign(ca_key, hashes.SHA256()))
    sa_key = ec.generate_private_key(ec.SECP256R1())
    pki.mkdir(parents=True, exist_ok=True)
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (pki / "ca.key").write_bytes(key_pem(ca_key))
    (pki / "apiserver.crt").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (pki / "apiserver.key").write_bytes(key_pem(server_key))
    (pki / "sa.key").write_bytes(key_pem(sa_key))
    (pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def _node(name: str, gpus: int) -> dict[str, Any]:
    """A Node as a kubelet would register it: allocatable in its status (kwok keeps it)."""
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    labels = {KWOK_LABEL: "true", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", "type": "kwok"}
    taints = []
    if gpus:
        resources["nvidia.com/gpu"] = str(gpus)
        labels["nvidia.com/gpu.product"] = GPU_PRODUCT
        taints = [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels,
                         "annotations": {"kwok.x-k8s.io/node": "fake"}},
            "spec": {"taints": taints},
            "status": {"allocatable": resources, "capacity": resources}}


@dataclass
class ControlPlane:
    """Processes of one control plane under ``workdir``; :meth:`start`, then :meth:`stop`."""

    bins: Path
    workdir: Path
    with_controllers: bool = True
    server: str = ""
    kubeconfig: Path = field(default_factory=Path)
    admin_token: str = ""
    kwok_log: Path = field(default_factory=Path)  # what every container's log says
    started_in: float = 0.0  # seconds from start() to a ready API server
    pieces: dict[str, float] = field(default_factory=dict)  # piece -> seconds when ready
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, timeout: float = 120.0) -> ControlPlane:
        missing = missing_binaries(self.bins)
        if missing:
            raise ControlPlaneError(f"{', '.join(missing)} not built in {self.bins}: run "
                                    f"{BUILD_SCRIPT.relative_to(ROOT)}")
        began = time.monotonic()
        try:
            self._start(timeout, began)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.monotonic() - began
        return self

    def _start(self, timeout: float, began: float) -> None:
        pki = self.workdir / "pki"
        _write_pki(pki)
        self.admin_token = secrets.token_hex(16)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        tokens.chmod(0o600)

        etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._spawn("etcd", [
            str(self.bins / "etcd"), "--name=placer", f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=placer={peer_url}",
            # Throwaway data: fsync would only slow the tests down.
            "--unsafe-no-fsync", "--log-level=warn",
        ])
        self._wait("etcd", f"{etcd_url}/health", timeout, began, token=None)

        self.server = f"https://127.0.0.1:{api_port}"
        self._spawn("kube-apiserver", [
            str(self.bins / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            # The `kubernetes` Service's endpoints may not be loopback addresses; in-cluster
            # clients are not part of these tests, so that Service gets no endpoints.
            "--endpoint-reconciler-type=none",
            f"--secure-port={api_port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--profiling=false",
        ])
        self._wait("kube-apiserver", f"{self.server}/readyz", timeout, began,
                   token=self.admin_token)
        self.kubeconfig = self._write_kubeconfig()

        if self.with_controllers:
            self._start_controllers(pki, timeout, began)

    def _start_controllers(self, pki: Path, timeout: float, began: float) -> None:
        """kube-controller-manager (Jobs make pods, namespaces get their service account),
        kube-scheduler and Kueue, each only if built: the API itself needs none of them."""
        common = [f"--kubeconfig={self.kubeconfig}",
                  f"--authentication-kubeconfig={self.kubeconfig}",
                  f"--authorization-kubeconfig={self.kubeconfig}",
                  "--bind-address=127.0.0.1", "--leader-elect=false"]
        if not missing_binaries(self.bins, ("kube-controller-manager",)):
            port = _free_port()
            self._spawn("kube-controller-manager", [
                str(self.bins / "kube-controller-manager"), *common, f"--secure-port={port}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--use-service-account-credentials=true",
            ])
            self._wait("kube-controller-manager", f"https://127.0.0.1:{port}/healthz", timeout,
                       began, token=self.admin_token)
        if not missing_binaries(self.bins, ("kube-scheduler",)):
            port = _free_port()
            self._spawn("kube-scheduler", [
                str(self.bins / "kube-scheduler"), *common, f"--secure-port={port}",
            ])
            self._wait("kube-scheduler", f"https://127.0.0.1:{port}/healthz", timeout, began,
                       token=self.admin_token)
        if not missing_binaries(self.bins, ("kwok",)):
            self._start_kwok(timeout, began)
        if not missing_binaries(self.bins, ("kueue",)):
            self._start_kueue(pki, timeout, began)

    def _start_kwok(self, timeout: float, began: float) -> None:
        """kwok with this folder's Stages (``kwok-stages.yaml``), managing only the nodes
        labelled ``placer.dev/kwok``, then the :data:`NODES` registered and waited Ready.
        ``--node-lease-duration-seconds`` makes kwok renew each node's Lease, the heartbeat the
        node lifecycle controller reads, so the nodes never turn NotReady and get tainted."""
        import kubernetes.client
        import kubernetes.config

        # kwok also serves the kubelet API the API server proxies pods/log to; every
        # container's log is the file this fixture writes (nothing ran to write one).
        self.kwok_log = self.workdir / "kwok-container.log"
        self.kwok_log.write_text(KWOK_LOG)
        logs = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs",
                "metadata": {"name": "every-container"},
                "spec": {"logs": [{"logsFile": str(self.kwok_log), "follow": False}]}}
        logs_config = self.workdir / "kwok-logs.yaml"
        logs_config.write_text(json.dumps(logs))
        port = _free_port()
        pki = self.workdir / "pki"
        self._spawn("kwok", [
            str(self.bins / "kwok"), f"--kubeconfig={self.kubeconfig}",
            f"--config={KWOK_STAGES}", f"--config={logs_config}",
            f"--manage-nodes-with-label-selector={KWOK_LABEL}",
            "--node-ip=127.0.0.1", f"--node-port={port}", f"--server-address=127.0.0.1:{port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            "--cidr=10.244.0.0/16", "--node-lease-duration-seconds=40",
        ])
        with kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig)) as api:
            core: Any = kubernetes.client.CoreV1Api(api)
            for name, spec in NODES.items():
                core.create_node(_node(name, spec["gpus"]))
            while True:
                proc = self._procs["kwok"]
                if proc.poll() is not None:
                    raise ControlPlaneError(f"kwok exited with {proc.returncode}:\n"
                                            f"{self.log_tail('kwok')}")
                ready = [n.metadata.name for n in core.list_node(label_selector=KWOK_LABEL).items
                         if any(c.type == "Ready" and c.status == "True"
                                for c in n.status.conditions or [])]
                if len(ready) == len(NODES):
                    break
                if time.monotonic() > began + timeout:
                    raise ControlPlaneError(f"kwok made {ready} of {sorted(NODES)} Ready:\n"
                                            f"{self.log_tail('kwok')}")
                time.sleep(0.2)
        self.pieces["kwok"] = time.monotonic() - began

    def _start_kueue(self, pki: Path, timeout: float, began: float) -> None:
        """Kueue's CRDs (from the module, copied by the build script), then its controller with
        its own certificate management off: the webhook server gets the API server's loopback
        certificate. Its webhooks are not registered with the API server yet (a Service's
        endpoints may not be loopback; a URL webhook is next), and its visibility API is off."""
        import kubernetes.client
        import kubernetes.config
        import yaml

        crds = sorted((self.bins.parent / "kueue-crds").glob("*.yaml"))
        if not crds:
            raise ControlPlaneError(f"kueue is built but its CRDs are not in "
                                    f"{self.bins.parent / 'kueue-crds'}: rerun the build script")
        with kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig)) as api:
            ext: Any = kubernetes.client.ApiextensionsV1Api(api)
            names = []
            for path in crds:
                crd = yaml.safe_load(path.read_text())
                ext.create_custom_resource_definition(crd)
                names.append(crd["metadata"]["name"])
            for name in names:
                while not any(c.type == "Established" and c.status == "True" for c in
                              ext.read_custom_resource_definition(name).status.conditions or []):
                    if time.monotonic() > began + timeout:
                        raise ControlPlaneError(f"CRD {name} not established")
                    time.sleep(0.2)
            core: Any = kubernetes.client.CoreV1Api(api)
            core.create_namespace({"metadata": {"name": "kueue-system"}})
        certs = self.workdir / "kueue-certs"
        certs.mkdir()
        (certs / "tls.crt").write_bytes((pki / "apiserver.crt").read_bytes())
        (certs / "tls.key").write_bytes((pki / "apiserver.key").read_bytes())
        health, webhook = _free_port(), _free_port()
        config = {
            "apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration",
            "namespace": "kueue-system",
            "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
            "metrics": {"bindAddress": "0"},  # off
            "webhook": {"host": "127.0.0.1", "port": webhook, "certDir": str(certs)},
            "leaderElection": {"leaderElect": False},
            "internalCertManagement": {"enable": False},
            "integrations": {"frameworks": ["batch/job"]},
        }
        config_path = self.workdir / "kueue-config.yaml"
        config_path.write_text(json.dumps(config, indent=2))
        # Without its own certificate management Kueue reads its metrics certificate from the
        # fixed path /etc/kueue/metrics/certs (kueue v0.17.0 cmd/kueue/main.go). Rather than
        # write into the machine's /etc, Kueue runs in a private mount namespace whose /etc is
        # an overlay holding that folder (needs root, as CI and these machines have).
        upper = self.workdir / "kueue-etc"
        (upper / "kueue" / "metrics").mkdir(parents=True)
        shutil.copytree(certs, upper / "kueue" / "metrics" / "certs")
        (self.workdir / "kueue-etc-work").mkdir()
        overlay = ('mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc '
                   '&& shift 2 && exec "$@"')
        self._spawn("kueue", [
            "unshare", "--mount", "--propagation", "private", "sh", "-c", overlay, "sh",
            str(upper), str(self.workdir / "kueue-etc-work"),
            str(self.bins / "kueue"), f"--config={config_path}",
            "--feature-gates=VisibilityOnDemand=false",
        ], env={**os.environ, "KUBECONFIG": str(self.kubeconfig)})
        self._wait("kueue", f"http://127.0.0.1:{health}/readyz", timeout, began, token=None)

    def _write_kubeconfig(self) -> Path:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "placer-test",
            "clusters": [{"name": "placer-test", "cluster": {
                "server": self.server,
                "certificate-authority": str(self.workdir / "pki" / "ca.crt")}}],
            "users": [{"name": ADMIN_USER, "user": {"token": self.admin_token}}],
            "contexts": [{"name": "placer-test", "context": {
                "cluster": "placer-test", "user": ADMIN_USER, "namespace": "default"}}],
        }
        path = self.workdir / "kubeconfig"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML: any client reads it
        path.chmod(0o600)
        return path

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.workdir / f"{name}.log").open("wb")
        with log:
            self._procs[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, env=env,
                                                 start_new_session=True)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait(self, name: str, url: str, timeout: float, began: float, *,
              token: str | None) -> None:
        """Poll ``url`` until it answers 200 ``ok``-ish; fail with the log if the process
        exits or the deadline passes."""
        context = None
        if url.startswith("https"):
            context = ssl.create_default_context(cafile=str(self.workdir / "pki" / "ca.crt"))
            if not url.startswith(self.server or "\0"):  # controllers serve self-signed certs
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        deadline = began + timeout
        last = ""
        while time.monotonic() < deadline:
            proc = self._procs[name]
            if proc.poll() is not None:
                raise ControlPlaneError(f"{name} exited with {proc.returncode}:\n"
                                        f"{self.log_tail(name)}")
            try:
                with urllib.request.urlopen(request, timeout=5, context=context) as response:
                    if response.status == 200:
                        self.pieces[name] = time.monotonic() - began
                        return
            except (urllib.error.URLError, OSError) as exc:
                last = str(exc)
            time.sleep(0.2)
        raise ControlPlaneError(f"{name} not ready at {url} after {timeout:.0f}s ({last}):\n"
                                f"{self.log_tail(name)}")

    def stop(self) -> None:
        """SIGTERM in reverse start order, SIGKILL after 10 s; never leaves a process behind."""
        for name in reversed(list(self._procs)):
            proc = self._procs.pop(name)
            if proc.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
