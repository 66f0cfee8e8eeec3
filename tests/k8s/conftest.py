"""Fixtures for tests against a real control plane (``-m k8s``; deselected by default)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.k8s.controlplane import (
    BUILD_SCRIPT,
    ROOT,
    ControlPlane,
    bin_dir,
    install_crds,
    missing_binaries,
)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver (+ controller-manager, scheduler, kwok's nodes and Kueue when
    built) on loopback for the session, with an admin kubeconfig; stopped at the end. Without
    the binaries the tests skip, unless PLACER_K8S_REQUIRED=1 (CI, once it builds them) makes
    that a failure."""
    bins = bin_dir()
    missing = missing_binaries(bins)
    if missing:
        message = (f"{', '.join(missing)} not built in {bins}: run "
                   f"{BUILD_SCRIPT.relative_to(ROOT)} etcd kube-apiserver")
        if os.environ.get("PLACER_K8S_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    plane = ControlPlane(bins=bins, workdir=tmp_path_factory.mktemp("controlplane"))
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def admin_api(control_plane: ControlPlane) -> Iterator[Any]:
    """The official client's ApiClient, configured from the fixture's kubeconfig (admin)."""
    import kubernetes.config

    api = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(control_plane.kubeconfig))
    with api:
        yield api


@pytest.fixture(scope="session")
def kuberay_crds(control_plane: ControlPlane) -> str:
    """KubeRay's CRDs (from the module the build script copied them out of) installed in the
    control plane (RayJob and RayCluster, the kinds placer writes); the KubeRay version. No
    operator: the API server validates, nothing runs."""
    crds = control_plane.bins.parent / "kuberay-crds"
    paths = [p for p in (crds / "ray.io_rayjobs.yaml", crds / "ray.io_rayclusters.yaml")
             if p.exists()]
    if not paths:
        message = f"KubeRay's CRDs are not in {crds}: run {BUILD_SCRIPT.relative_to(ROOT)}"
        if os.environ.get("PLACER_K8S_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    install_crds(control_plane.kubeconfig, paths)
    return (crds / "VERSION").read_text().strip()
