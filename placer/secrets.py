"""Secrets: which values are credentials, and masking them in text shown or logged.

Secrets are known **by reference**: a site's ``cluster.token_env`` names an environment variable
and ``cluster.token_file`` a file; their *values* are the secrets (:func:`secret_values`). A
:class:`Redactor` masks those values wherever they appear in display text: log lines, error
messages, reasons, the journal's event log, what the CLI prints.

Redaction is for display only. What the executor decides from (the pipeline, inventory,
policies and plans a run was submitted with) is stored and read back byte for byte; masking a
key that merely *looks* secret (``private: "true"``, ``TOKENIZERS_PARALLELISM``) in that data
would change where jobs may run and what they run with.

As a second line for display text, a Redactor also masks the values of environment variables
whose *names* look like credentials (``RAY_AUTH_TOKEN``, ``AWS_SECRET_ACCESS_KEY``): an SDK
that echoes the credential it read from the environment into an error is still masked.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["MASK", "Redactor", "secret_values"]

# Names whose values are credentials, wherever they appear (env vars, JSON keys of log data).
_SECRET_NAME = re.compile(
    r"(TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|AUTH)", re.I
)
MASK = "***"
# Keys that name *where* a secret lives (an env var's name, a file's path), not a secret.
_SECRET_REFERENCE = re.compile(r"^token_(env|file)$")
_MIN_SECRET_LEN = 6  # shorter values would mask innocent text ("1", "true")

# Ray's own fallbacks when a Ray site's inventory names no token (what placer_ray reads then).
_RAY_TOKEN_ENV = "RAY_AUTH_TOKEN"
_RAY_TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
_RAY_DEFAULT_TOKEN_FILE = "~/.ray/auth_token"


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _read(path: str) -> str | None:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):  # the backend reports an unreadable token itself
        return None


def secret_values(sites: Iterable[Any]) -> set[str]:
    """The credential values the sites' clusters use, read from where the inventory says.

    ``sites`` are :class:`~placer.models.Site` or :class:`~placer.models.ResolvedSite` objects,
    or their JSON form (mappings, as the journal stores them). For each site's ``cluster``: the
    value of the environment variable ``token_env`` names and the content of ``token_file``
    (each as read and stripped, as backends send it); for a Ray cluster naming neither, Ray's
    own fallbacks (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``). A
    variable that is unset or a file that cannot be read contributes nothing (the backend says
    so when it needs the token). Whatever the variable is called: ``MUNICH_RAY`` holds a
    secret as much as ``RAY_TOKEN`` does. The same for the variables a site's
    ``storage_credentials`` names (its store's keys).
    """
    found: set[str] = set()
    for site in sites:
        # A site's store's keys (storage_credentials names the variables holding them).
        creds = _field(site, "storage_credentials")
        for name in ("access_key_id_env", "secret_access_key_env", "session_token_env"):
            env = _field(creds, name) if creds is not None else None
            value = os.environ.get(str(env)) if env else None
            if value and value.strip():
                found.add(value.strip())
        key_file = _field(creds, "credentials_file") if creds is not None else None
        if key_file:  # a service-account key: its private key and the key's id
            try:
                key = json.loads(_read(str(key_file)) or "{}")
            except ValueError:
                key = {}
            found.update(str(key[k]).strip() for k in ("private_key", "private_key_id")
                         if isinstance(key, dict) and key.get(k))
        cluster = _field(site, "cluster")
        if cluster is None:
            continue
        raw: list[str | None] = []
        token_env, token_file = _field(cluster, "token_env"), _field(cluster, "token_file")
        if token_env:
            raw.append(os.environ.get(str(token_env)))
        if token_file:
            raw.append(_read(str(token_file)))
        if not token_env and not token_file and _field(cluster, "backend") in (None, "ray"):
            raw.append(os.environ.get(_RAY_TOKEN_ENV))
            path = os.environ.get(_RAY_TOKEN_PATH_ENV)
            raw.append(_read(path) if path else None)
            raw.append(_read(_RAY_DEFAULT_TOKEN_FILE))
        for value in raw:
            if value:
                found.add(value)
                if value.strip():
                    found.add(value.strip())
    return found


class Redactor:
    """Masks secret values in text before it is shown, logged or written to a log.

    Knows the values passed explicitly or added later (:meth:`add`, typically
    :func:`secret_values` of a run's sites) and, unless ``from_env=False``, those of
    environment variables whose name looks like a credential. :meth:`data` (for log-like JSON
    data, e.g. the journal's events) also masks the values of secret-looking keys. Never apply
    it to data a decision is made from.
    """

    def __init__(self, values: Iterable[str] = (), *, from_env: bool = True) -> None:
        found = {v for v in values if v and len(v) >= _MIN_SECRET_LEN}
        if from_env:
            found |= {v for k, v in os.environ.items()
                      if _SECRET_NAME.search(k) and len(v) >= _MIN_SECRET_LEN}
        # Longest first, so a secret containing another is masked whole.
        self._values = sorted(found, key=lambda v: (-len(v), v))

    def add(self, *values: str) -> None:
        """Learn more secret values (e.g. a site's token read from its ``token_file``)."""
        self._values = sorted({*self._values, *(v for v in values
                                                if v and len(v) >= _MIN_SECRET_LEN)},
                              key=lambda v: (-len(v), v))

    def knows(self, value: str) -> bool:
        """Whether ``value`` is masked by :meth:`text`."""
        return value in self._values

    def text(self, s: str) -> str:
        for v in self._values:
            s = s.replace(v, MASK)
        return s

    def data(self, obj: Any) -> Any:
        """A copy of JSON-like log data with secret keys' values and known secrets masked."""
        if isinstance(obj, Mapping):
            return {k: (MASK if isinstance(k, str) and _SECRET_NAME.search(k)
                        and not _SECRET_REFERENCE.match(k)
                        and isinstance(v, str) else self.data(v)) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.data(v) for v in obj]
        if isinstance(obj, str):
            return self.text(obj)
        return obj
