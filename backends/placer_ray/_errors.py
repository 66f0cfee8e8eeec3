"""The one place where Ray SDK exceptions become placer's, with the token scrubbed out.

Ray's job SDK raises builtin exceptions with HTTP bodies in their text (``RuntimeError("Request
failed with status code 404: ...")``), ``ConnectionError`` when the dashboard does not answer at
construction, ``requests`` exceptions when it stops answering later, and
``ray.exceptions.AuthenticationError`` for a missing or wrong token. placer's executor needs
three outcomes from them: the site is down (fail over), the job is not there (adopt or submit),
anything else (retry with backoff). :func:`probe` is the one request a preflight makes
(``placer preflight``, and ``placer submit`` before anything is recorded): no SDK, no retry.
"""

from __future__ import annotations

import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from placer.errors import BackendError, CredentialsError, SiteUnreachableError

_STATUS = re.compile(r"status code (\d{3})")
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")
MASK = "***"


class JobNotFoundError(BackendError):
    """The cluster answered, and has no job with that submission id."""


def http_status(exc: BaseException) -> int | None:
    """The HTTP status Ray's SDK folded into an exception message, if any."""
    match = _STATUS.search(str(exc))
    return int(match.group(1)) if match else None


def scrub(text: str, secret: str | None) -> str:
    """``text`` with the secret and any bearer credential masked."""
    if secret:
        text = text.replace(secret, MASK)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


def _is_connection_error(exc: BaseException) -> bool:
    # requests' ConnectionError (and ConnectTimeout, its subclass) is an OSError but not the
    # builtin ConnectionError; importing requests here would be cheap but naming it by module
    # keeps this file free of SDK imports.
    if isinstance(exc, ConnectionError):
        return True
    return any(
        f"{cls.__module__}.{cls.__qualname__}" == "requests.exceptions.ConnectionError"
        for cls in type(exc).__mro__
    )


def _is_auth_error(exc: BaseException) -> bool:
    return any(cls.__name__ == "AuthenticationError" for cls in type(exc).__mro__) or (
        http_status(exc) in (401, 403)
    )


@contextmanager
def mapped(site: str, address: str, what: str, secret: str | None) -> Iterator[None]:
    """Translate SDK exceptions raised inside the block into placer's tree.

    The token is masked in every message; when the SDK's own text contained it, the chain is
    cut (``from None``) so no traceback can print it either.
    """
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:
        raw = f"{type(exc).__name__}: {exc}"
        clean = scrub(raw, secret)
        cause = exc if clean == raw else None
        if _is_connection_error(exc):
            raise SiteUnreachableError(
                site, f"Ray cluster at {address} is unreachable while trying to {what} ({clean})"
            ) from cause
        if _is_auth_error(exc):
            # Ray's own text advises `ray get-auth-token --generate`, which makes a new token
            # the cluster does not know: only the status is kept.
            code = http_status(exc)
            raise CredentialsError(
                f"{site}: Ray cluster at {address} refused the credentials while trying to"
                f" {what}"
                f"{f' (HTTP {code})' if code else ''}: set the site's token_env / token_file"
                " to the token the cluster was started with"
            ) from cause
        if http_status(exc) == 404:
            raise JobNotFoundError(f"{site}: {what}: no such job ({clean})") from cause
        raise BackendError(f"{site}: Ray cluster at {address}: cannot {what} ({clean})") from cause


def probe(site: str, address: str, token: str | None, source: str, *,
          timeout_s: float = 3.0, verify: bool = True) -> None:
    """One authenticated request to the Jobs API, no retry, a short timeout (preflight).

    ``source`` says where the token came from (``environment variable RAY_TOKEN_X
    (token_env)``), so an error names what to fix. Plain HTTP through the standard library:
    the SDK would retry and load Ray. Raises :class:`SiteUnreachableError` (nothing answered
    in ``timeout_s``) or :class:`BackendError` (the token was refused, or another answer), each
    one line that says what to do.
    """
    req = urllib.request.Request(address.rstrip("/") + "/api/jobs/")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    context = None
    if not verify:  # the site's cluster.options.verify_tls: "false", as the SDK is told
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with urllib.request.urlopen(req, timeout=timeout_s, context=context) as resp:
            resp.read(1)
    except urllib.error.HTTPError as exc:
        exc.close()  # the error holds the response (and its socket) open
        if exc.code in (401, 403):
            fix = (f"set {source} to the token the cluster was started with" if token else
                   f"the cluster wants a token and {source} gives none: set it")
            raise CredentialsError(f"{site}: Ray cluster at {address} refused the "
                                   f"credentials (HTTP {exc.code}): {fix}") from None
        raise BackendError(f"{site}: Ray cluster at {address} answered HTTP {exc.code} to "
                           "GET /api/jobs/: is cluster.address the Ray dashboard (port 8265)?"
                           ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = scrub(str(getattr(exc, "reason", exc)), token)
        raise SiteUnreachableError(
            site, f"Ray cluster at {address} does not answer ({reason}, {timeout_s:g}s "
            "timeout): start it, or fix the site's cluster.address") from None
