"""How the k8s backend names a refusal: the two kinds of 403 a real API server sends (RBAC and
ResourceQuota, bodies as kube-apiserver 1.37 wrote them in ``tests/k8s``), and a kept-alive
connection the server closed. The same cases run against a real API server in
``tests/k8s/test_placer_k8s.py`` (``-m k8s``)."""

from __future__ import annotations

import json
from http.client import RemoteDisconnected

import pytest
from kubernetes.client import ApiException
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from placer.errors import SiteUnreachableError
from placer_k8s._errors import is_dropped, is_unreachable, map_error, quota_refusal

WHAT = "create jobs.batch run-1-train-28b177c5c7 in namespace ml"
CREDS = "kubeconfig context 'fra'"


def forbidden(message: str) -> ApiException:
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": message, "reason": "Forbidden", "code": 403})
    return exc


QUOTA = ('jobs.batch "run-1-train-28b177c5c7" is forbidden: exceeded quota: team-quota, '
         'requested: count/jobs.batch=1,requests.nvidia.com/gpu=8, used: count/jobs.batch=4,'
         'requests.nvidia.com/gpu=8, limited: count/jobs.batch=4,requests.nvidia.com/gpu=8')
RBAC = ('jobs.batch is forbidden: User "system:serviceaccount:ml:placer" cannot create '
        'resource "jobs" in API group "batch" in the namespace "ml"')


def test_a_quota_refusal_is_named_as_such_with_the_quota_and_figures() -> None:
    error = map_error(forbidden(QUOTA), "fra", WHAT, CREDS)
    assert str(error) == (
        f"fra: a ResourceQuota refused {WHAT} (exceeded quota: team-quota, requested: "
        "count/jobs.batch=1,requests.nvidia.com/gpu=8, used: count/jobs.batch=4,"
        "requests.nvidia.com/gpu=8, limited: count/jobs.batch=4,requests.nvidia.com/gpu=8)")


def test_an_rbac_refusal_names_the_verb_resource_and_namespace_but_not_the_body() -> None:
    error = str(map_error(forbidden(RBAC), "fra", WHAT, CREDS))
    assert error == (f"fra: access denied by the Kubernetes API ({WHAT}: HTTP 403 Forbidden); "
                     f"the credentials of {CREDS} need that permission")
    assert quota_refusal(forbidden(RBAC)) is None


@pytest.mark.parametrize("body", [
    "not json", json.dumps(["a list"]), json.dumps({"message": 7}),
    # Only the generated quota text is quoted: a token echoed after it stays out.
    json.dumps({"message": "exceeded quota: q, requested: a=1 Bearer s3cr3t-token"}),
])
def test_odd_403_bodies_never_leak_into_the_message(body: str) -> None:
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = body
    assert "s3cr3t" not in str(map_error(exc, "fra", WHAT, CREDS))


def test_a_closed_kept_alive_connection_is_dropped_not_unreachable() -> None:
    dropped = MaxRetryError(None, "/apis/batch/v1", ProtocolError(  # type: ignore[arg-type]
        "Connection aborted.", RemoteDisconnected("Remote end closed connection")))
    assert is_dropped(dropped) and not is_unreachable(dropped)
    refused = MaxRetryError(None, "/", NewConnectionError(  # type: ignore[arg-type]
        None, "Connection refused"))  # type: ignore[arg-type]
    assert is_unreachable(refused) and not is_dropped(refused)
    assert isinstance(map_error(refused, "fra", WHAT, CREDS), SiteUnreachableError)


def invalid(causes: object) -> ApiException:
    exc = ApiException(status=422, reason="Unprocessable Entity")
    exc.body = json.dumps({"kind": "Status", "code": 422, "reason": "Invalid",
                           "message": "RayJob is invalid: spec.x: Invalid value: \"s3cr3t\"",
                           "details": {"causes": causes}})
    return exc


def test_an_invalid_object_names_its_fields_and_reasons_but_never_the_values() -> None:
    error = str(map_error(invalid([
        {"reason": "FieldValueTypeInvalid", "message": "Invalid value: \"s3cr3t\"",
         "field": "spec.rayClusterSpec.workerGroupSpecs[0].replicas"},
        {"reason": "FieldValueRequired", "field": "spec.rayClusterSpec.headGroupSpec"},
    ]), "fra", WHAT, CREDS))
    assert error == (
        f"fra: Kubernetes {WHAT} failed: HTTP 422 Unprocessable Entity; invalid: "
        "spec.rayClusterSpec.workerGroupSpecs[0].replicas (FieldValueTypeInvalid), "
        "spec.rayClusterSpec.headGroupSpec (FieldValueRequired)")


@pytest.mark.parametrize("causes", [
    "not a list", [{"field": "Bearer s3cr3t", "reason": "X"}],
    [{"field": "spec.a", "reason": "Bad s3cr3t value"}], [7, None],
])
def test_odd_422_causes_never_leak_into_the_message(causes: object) -> None:
    error = str(map_error(invalid(causes), "fra", WHAT, CREDS))
    assert "s3cr3t" not in error and error.startswith(f"fra: Kubernetes {WHAT} failed: HTTP 422")
