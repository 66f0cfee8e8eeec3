"""S3 errors mapped to placer's tree, in one place.

Messages are built from the URI, the S3 error code and the HTTP status only, never from the
SDK's text or request: whatever a botocore message might echo (an access key id, a signature's
string-to-sign) stays out of placer's logs, journal rows and error messages. The error types
are every store's (:mod:`placer.errors`).
"""

from __future__ import annotations

from typing import Any

from placer.errors import BackendError, DatasetNotFoundError

# S3 error codes that mean "this bucket or key does not exist".
_NOT_FOUND = frozenset({"NoSuchBucket", "NoSuchKey", "404", "NotFound"})
# S3 error codes that mean "these credentials may not do this".
_DENIED = frozenset({
    "AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "InvalidToken", "AllAccessDisabled", "AccountProblem",
})


def map_client_error(exc: Exception, uri: str, operation: str) -> BackendError:
    """Turn a botocore exception into placer's, naming the URI and the S3 operation.

    The caller chains it (``raise map_client_error(e, ...) from e``) so a developer can still
    see the SDK's exception in a traceback; the message itself carries no SDK text.
    """
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if code in _NOT_FOUND:
        what = "bucket does not exist" if code == "NoSuchBucket" else "no such object"
        return DatasetNotFoundError(uri, f"{what} ({operation})")
    if code in _DENIED:
        return BackendError(f"{uri}: access denied by S3 ({operation}: {code}); check that the "
                            "configured credentials may perform it")
    if code:
        return BackendError(f"{uri}: S3 {operation} failed: {code} (HTTP {status})")
    # No S3 response at all: connection refused, timeout, no credentials found, bad endpoint.
    return BackendError(f"{uri}: S3 {operation} failed: {type(exc).__name__}")
