"""The one place where Kubernetes client exceptions become placer's.

The executor needs three outcomes from a failed call: the site is down (fail over), the object
is not there (adopt or submit; callers ask for 404/409 before this mapping), anything else
(retry with backoff). Messages are built from the site, the operation, the HTTP status and its
reason phrase, never from the response body or the request as such: the client's exceptions
carry the response headers and body, and a misconfigured proxy or webhook may echo a bearer
token. From a body, only what the server generates is quoted, matched by pattern: a quota's
figures, an invalid object's field paths and reason codes.
"""

from __future__ import annotations

import json
import re

from placer.errors import BackendError, SiteUnreachableError

# urllib3 exceptions (named, so this module imports no SDK) that mean "nothing answered".
_UNREACHABLE = frozenset({"NewConnectionError", "ConnectTimeoutError", "NameResolutionError",
                          "ConnectionRefusedError"})


def api_status(exc: BaseException) -> int | None:
    """The HTTP status of a ``kubernetes.client.ApiException``; ``None`` for anything else."""
    if any(cls.__name__ == "ApiException" for cls in type(exc).__mro__):
        status = getattr(exc, "status", None)
        return status if isinstance(status, int) and status > 0 else None
    return None


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the API server did not answer at all."""
    return _in_chain(exc, _UNREACHABLE)


# What the ResourceQuota admission plugin says when it refuses an object (HTTP 403, reason
# Forbidden, like an RBAC refusal): "<resource> \"<name>\" is forbidden: exceeded quota: <quota>,
# requested: <resource>=<qty>,..., used: ..., limited: ..." (k8s.io/apiserver
# pkg/admission/plugin/resourcequota/controller.go). Only this generated part is quoted back:
# quota and resource names and quantities, nothing a client sent.
_QUANTITIES = r"[A-Za-z0-9./=_-]{1,300}(?:,[A-Za-z0-9./=_-]{1,300}){0,30}"  # a=1,b=2
_QUOTA = re.compile(rf"exceeded quota: [A-Za-z0-9.-]{{1,253}}, requested: {_QUANTITIES}"
                    rf"(?:, used: {_QUANTITIES})?(?:, limited: {_QUANTITIES})?")


def quota_refusal(exc: BaseException) -> str | None:
    """The quota part of a 403 that a namespace ResourceQuota gave, else ``None``."""
    if api_status(exc) != 403:
        return None
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
    except (ValueError, TypeError):
        return None
    message = body.get("message") if isinstance(body, dict) else None
    found = _QUOTA.search(message) if isinstance(message, str) else None
    return found.group(0) if found else None


# A 422 (Invalid) names each refused field in ``details.causes``: a path the server generates
# from its schema (``spec.a[0].b``) and a reason code (``FieldValueRequired``). Only those are
# quoted back, never the cause's message (it may quote the value sent), and only a path into
# the object (``metadata``/``spec``/``status``), at most ten of them.
_FIELD = re.compile(r"(?:metadata|spec|status)(?:[.\[][A-Za-z0-9_.\[\]/-]{0,300})?")
_CAUSE = re.compile(r"[A-Za-z]{1,64}")


def invalid_fields(exc: BaseException) -> list[str]:
    """``field (reason)`` of each cause of a 422 the API server gave, else ``[]``."""
    if api_status(exc) != 422:
        return []
    try:
        body = json.loads(getattr(exc, "body", None) or "{}")
    except (ValueError, TypeError):
        return []
    details = body.get("details") if isinstance(body, dict) else None
    causes = details.get("causes") if isinstance(details, dict) else None
    out = []
    for cause in causes if isinstance(causes, list) else ():
        field = cause.get("field") if isinstance(cause, dict) else None
        reason = cause.get("reason") if isinstance(cause, dict) else None
        if isinstance(field, str) and _FIELD.fullmatch(field):
            ok = isinstance(reason, str) and _CAUSE.fullmatch(reason)
            out.append(f"{field} ({reason})" if ok else field)
    return out[:10]


# The server closed a kept-alive connection before answering: a restarted API server or load
# balancer, or one that has gone. urllib3 does not retry it with ``retries = 0``.
_DROPPED = frozenset({"RemoteDisconnected", "ConnectionResetError", "BrokenPipeError",
                      "SSLEOFError"})


def is_dropped(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a connection the server closed without answering."""
    return _in_chain(exc, _DROPPED)


def _in_chain(exc: BaseException, names: frozenset[str]) -> bool:
    """Whether ``exc`` or anything it wraps (cause, context, urllib3's ``reason``, an
    exception among its args) is of a class named in ``names`` (or a subclass of one)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if any(cls.__name__ in names for cls in type(e).__mro__):
            return True
        reason = getattr(e, "reason", None)
        todo += [e.__cause__, e.__context__, reason if isinstance(reason, BaseException) else None,
                 *(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))]
    return False


def map_error(exc: BaseException, site: str, what: str, credentials: str) -> BackendError:
    """Turn a Kubernetes client exception into placer's; the caller chains it with ``from``.

    ``credentials`` says where the credentials come from (a kubeconfig context, a token's
    environment variable), never what they are. A 403 is either RBAC (the credentials lack the
    verb on the resource in that namespace) or a ResourceQuota refusing the object; they need
    different fixes, so the message says which.
    """
    status = api_status(exc)
    quota = quota_refusal(exc)
    if quota:
        return BackendError(f"{site}: a ResourceQuota refused {what} ({quota})")
    if status == 403:
        return BackendError(f"{site}: access denied by the Kubernetes API ({what}: HTTP 403 "
                            f"Forbidden); the credentials of {credentials} need that permission")
    if status == 401:
        return BackendError(f"{site}: access denied by the Kubernetes API ({what}: HTTP 401 "
                            f"Unauthorized); check the credentials of {credentials}")
    if status is not None:
        reason = str(getattr(exc, "reason", "") or "").splitlines()[0:1]
        fields = invalid_fields(exc)
        return BackendError(f"{site}: Kubernetes {what} failed: HTTP {status}"
                            + (f" {reason[0]}" if reason else "")
                            + (f"; invalid: {', '.join(fields)}" if fields else ""))
    if is_unreachable(exc):
        return SiteUnreachableError(site, f"Kubernetes API did not answer ({what})")
    return BackendError(f"{site}: Kubernetes {what} failed: {type(exc).__name__}")
