"""The one place where Kubernetes client exceptions become placer's.

The executor needs three outcomes from a failed call: the site is down (fail over), the object
is not there (adopt or submit; callers ask for 404/409 before this mapping), anything else
(retry with backoff). Messages are built from the site, the operation, the HTTP status and its
reason phrase only, never from the response body or the request: the client's exceptions carry
the response headers and body, and a misconfigured proxy or webhook may echo a bearer token.
"""

from __future__ import annotations

from placer.errors import BackendError, SiteUnreachableError

# urllib3 exceptions (named, so this module imports no SDK) that mean "nothing answered".
_UNREACHABLE = frozenset({"NewConnectionError", "ConnectTimeoutError", "NameResolutionError"})


def api_status(exc: BaseException) -> int | None:
    """The HTTP status of a ``kubernetes.client.ApiException``; ``None`` for anything else."""
    if any(cls.__name__ == "ApiException" for cls in type(exc).__mro__):
        status = getattr(exc, "status", None)
        return status if isinstance(status, int) and status > 0 else None
    return None


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the API server did not answer at all."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError) or any(
                cls.__name__ in _UNREACHABLE for cls in type(e).__mro__):
            return True
        reason = getattr(e, "reason", None)  # urllib3's MaxRetryError wraps the cause here
        todo += [e.__cause__, e.__context__, reason if isinstance(reason, BaseException) else None]
    return False


def map_error(exc: BaseException, site: str, what: str, credentials: str) -> BackendError:
    """Turn a Kubernetes client exception into placer's; the caller chains it with ``from``.

    ``credentials`` says where the credentials come from (a kubeconfig context, a token's
    environment variable), never what they are.
    """
    status = api_status(exc)
    if status in (401, 403):
        return BackendError(f"{site}: access denied by the Kubernetes API ({what}: HTTP "
                            f"{status}); check the credentials of {credentials}")
    if status is not None:
        reason = str(getattr(exc, "reason", "") or "").splitlines()[0:1]
        return BackendError(f"{site}: Kubernetes {what} failed: HTTP {status}"
                            + (f" {reason[0]}" if reason else ""))
    if is_unreachable(exc):
        return SiteUnreachableError(site, f"Kubernetes API did not answer ({what})")
    return BackendError(f"{site}: Kubernetes {what} failed: {type(exc).__name__}")
