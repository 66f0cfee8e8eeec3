"""The ``file://`` store: an on-prem site's shared file system (NFS, Lustre, GPFS) as an
:class:`~placer.storage.ObjectStore`, with no SDK.

An on-prem site declares it as its storage (``storage: file:///mnt/nfs/placer``); the store
serves that directory (its *root*) and nothing else. A file system has no geography, so what
it holds is where its site is (the rule for on-prem stores, docs/storage.md, "Where a bucket
is"). A ``file://`` path under no declared root has no known location and is refused by the
router (:class:`placer.backends.StorageRouter`), never guessed.

How the store keeps the contract of :class:`~placer.storage.ObjectStore`:

* **URIs.** ``file:///mnt/nfs/placer/run/x`` has no bucket: the key is the whole path without
  its leading ``/`` (``mnt/nfs/placer/run/x``), so :func:`placer.storage.with_key` builds
  sibling URIs unchanged. A path that leaves the root (``..``, a symbolic link pointing out)
  is refused.
* **Versions.** An object's version is ``<mtime_ns>-<size>-<inode>``: a rewrite by anyone
  changes it, and reads and same-store copies are pinned to it.
* **Tags.** The root's own sidecar ``<root>/.placer.json`` (``{"tags": {...}}``) holds the
  store's tags, as a bucket's tags; an object's own tags are in its sidecar (below).
* **Checksums and object tags: a sidecar.** Each object written through placer gets a hidden sibling
  ``.<name>.placer.json`` holding its SHA-256 and MD5, content type, metadata and tags, and
  the version they were computed for. Extended attributes were not chosen: NFS before v4.2
  and several parallel file systems drop them. A sidecar whose version is not the file's
  (someone rewrote the file) is ignored: the checksums are then computed from the bytes.
  Sidecars and temporary files are never listed as objects.
* **Atomic writes.** Bytes go to a temporary file in the destination directory, hashed on the
  way and checked against the checksums sent, are flushed to disk (``fsync``), then renamed
  over the destination: a reader sees the old object or the new one, never part of one.
* **No bucket is created.** The root must exist (as a bucket must); directories under it are
  made as needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from placer.errors import BackendError, ChecksumMismatchError, DatasetNotFoundError
from placer.storage import (
    ALGORITHMS,
    CHUNK,
    DEFAULT_TTL_S,
    BucketFacts,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    StoredObject,
    clean_store_tags,
    hasher,
)

if TYPE_CHECKING:
    from placer.models import Location

__all__ = ["FileStore", "file_path"]

_SIDECAR = ".placer.json"  # .<name>.placer.json
_TEMP = ".placer-tmp-"  # .<name>.placer-tmp-<random>


def file_path(uri: str) -> str:
    """The absolute path a ``file://`` URI names (``file:///a/b`` → ``/a/b``).

    >>> file_path("file:///mnt/nfs/placer/ds/")
    '/mnt/nfs/placer/ds/'
    """
    if not uri.startswith("file:///"):
        raise BackendError(f"{uri}: not a file:// URI with an absolute path (file:///path)")
    return uri[len("file://"):]


def _hidden(name: str) -> bool:
    """Whether a directory entry is the store's own bookkeeping, not an object."""
    return name.startswith(".") and (name.endswith(_SIDECAR) or _TEMP in name)


class FileStore(ObjectStore):
    """One on-prem site's shared directory as an object store; see the module docstring.

    Args:
        root: the ``file://`` URI (or absolute path) of the directory the store serves.
        onprem_location: the location of the site whose file system it is: where every object
            under ``root`` is.
        page_size: objects per listing page.
        cache_ttl_s: how long :meth:`resolve` reuses the root's facts (seconds).
    """

    name = "file"
    schemes = ("file",)
    by_path = True  # routed by the directory that holds a path, not by a bucket name
    native = "sha256"
    head_operation = "stat"
    list_operation = "walk"
    object_tags_operation = "sidecar tags"

    def __init__(self, *, root: str, onprem_location: Location, page_size: int = 1000,
                 cache_ttl_s: float = DEFAULT_TTL_S) -> None:
        if onprem_location.provider != "onprem":
            raise ValueError(f"a file:// store is an on-prem site's file system, not a store "
                             f"at {onprem_location.key}")
        path = file_path(root) if root.startswith("file:") else root
        if not os.path.isabs(path):
            raise ValueError(f"a file:// store's root must be an absolute path, not {root!r}")
        self.root = os.path.normpath(path)
        self.onprem_location = onprem_location
        self.page_size = page_size
        self.ttl_s = cache_ttl_s

    def __repr__(self) -> str:
        return f"FileStore(root={self.root!r}, onprem_location={self.onprem_location.key!r})"

    @property
    def root_uri(self) -> str:
        """``file://<root>/``."""
        return f"file://{self.root.rstrip('/')}/"

    def holds(self, uri: str) -> bool:
        """Whether ``uri`` names a path under this store's root (by its text; see ``_path``)."""
        if not uri.startswith("file:///"):
            return False
        path = os.path.normpath(file_path(uri))
        return path == self.root or path.startswith(self.root.rstrip("/") + "/")

    # -- URIs ----------------------------------------------------------------------------------
    def parse(self, uri: str) -> tuple[str, str]:
        """``("", path without its leading /)``: a file system has no buckets."""
        path = file_path(uri)
        return "", path[1:]

    def _path(self, uri: str) -> Path:
        """The path ``uri`` names, refused unless it stays under the root once resolved
        (``..`` and symbolic links included): a path elsewhere has no known location."""
        raw = file_path(uri)
        if not self.holds(uri):
            raise BackendError(f"{uri}: not under this store's root {self.root_uri}")
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(raw)
        if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
            raise BackendError(f"{uri}: resolves to {real}, outside the store's root "
                               f"{self.root_uri}; its location is unknown, so it is refused")
        return Path(raw)

    def _root_exists(self, uri: str) -> None:
        if not os.path.isdir(self.root):
            raise DatasetNotFoundError(uri, f"the store's root {self.root} is not a directory "
                                            "(roots are never created, as buckets are not)")

    # -- the store's primitives ----------------------------------------------------------------
    def location(self, uri: str, *, fresh: bool = False) -> str:
        """The site's location: a file system is where its site is."""
        self._path(uri)
        self._root_exists(uri)
        return self.onprem_location.key

    def bucket_facts(self, uri: str) -> BucketFacts:
        """The site's location; tags from the root's sidecar ``<root>/.placer.json``
        (``{"tags": {...}}``, written by whoever owns the directory), as a bucket's tags."""
        where = self.location(uri)
        side = Path(self.root, _SIDECAR)
        try:
            raw = json.loads(side.read_text(encoding="utf-8")).get("tags", {})
        except FileNotFoundError:
            raw, said = {}, f"no {side}: no tags"
        except (OSError, ValueError, AttributeError) as exc:
            raise BackendError(f"{uri}: the store's tag file {side} cannot be read as "
                               f'{{"tags": {{...}}}} ({type(exc).__name__})') from None
        else:
            said = f"read {side}: {len(raw)} tags"
        if not isinstance(raw, dict):
            raise BackendError(f"{uri}: the store's tag file {side}: tags must be a mapping")
        tags = clean_store_tags(uri, self.root, None, [(str(k), str(v)) for k, v in raw.items()])
        return BucketFacts(
            location=where,
            location_evidence=(f"file store {self.root_uri} of an on-prem site at {where} "
                               f"({self.onprem_location.country}): a file system is where "
                               "its site is"),
            tags=tags, tags_evidence=said, provider="onprem")

    def head(self, uri: str) -> StoredObject | None:
        path = self._path(uri)
        try:
            st = path.stat()
        except FileNotFoundError:
            self._root_exists(uri)
            return None
        if not path.is_file() or _hidden(path.name):
            return None
        version = _version(st)
        side = _read_sidecar(path)
        if side.get("version") != version:
            side = {}  # written by someone else since: nothing kept applies to these bytes
        return StoredObject(uri=uri, size=st.st_size, version=version,
                            checksums=dict(side.get("checksums", {})),
                            content_type=side.get("content_type"),
                            metadata=dict(side.get("metadata", {})))

    def pages(self, prefix_uri: str) -> Iterator[list[ObjectInfo]]:
        prefix = file_path(prefix_uri)
        self._path(prefix_uri)
        self._root_exists(prefix_uri)
        top = prefix if prefix.endswith("/") else os.path.dirname(prefix) + "/"
        found: list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in filenames:
                full = os.path.join(dirpath, name)
                if _hidden(name) or not full.startswith(prefix) or not os.path.isfile(full):
                    continue
                found.append(ObjectInfo(uri=f"file://{full}", size=os.path.getsize(full)))
        found.sort(key=lambda o: o.uri)
        for i in range(0, len(found), self.page_size):
            yield found[i:i + self.page_size]

    def object_tag_pairs(self, obj: StoredObject) -> list[tuple[str, str]]:
        side = _read_sidecar(self._path(obj.uri))
        if side.get("version") != obj.version:
            return []
        return [(str(k), str(v)) for k, v in side.get("tags", [])]

    def open_read(self, obj: StoredObject) -> ObjectReader:
        path = self._path(obj.uri)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            raise DatasetNotFoundError(obj.uri, "deleted since it was listed") from None
        if _version(os.fstat(f.fileno())) != obj.version:
            f.close()
            raise BackendError(f"{obj.uri}: changed since it was read (version {obj.version}); "
                               "not mixing two versions")
        return f

    def read_range(self, obj: StoredObject, start: int, length: int) -> bytes:
        """``length`` bytes of ``obj.version`` from ``start``: a seek, not a stream from 0."""
        f = self.open_read(obj)
        try:
            f.seek(start)  # type: ignore[attr-defined]  # open_read gives a real file
            return f.read(length)
        finally:
            f.close()

    def copy_one(self, src: StoredObject, dst_uri: str) -> None:
        sums = {a: self.digest(src, a) for a in ALGORITHMS}
        reader = self.open_read(src)
        try:
            self.write(dst_uri, cast("IO[bytes]", _ReaderIO(reader)), size=src.size, checksums=sums,
                       content_type=src.content_type, metadata=src.metadata,
                       tags=self.object_tag_pairs(src))
        finally:
            reader.close()

    def write(self, uri: str, body: IO[bytes], *, size: int, checksums: Mapping[str, str],
              content_type: str | None = None, metadata: Mapping[str, str] | None = None,
              tags: Sequence[tuple[str, str]] = ()) -> StoredObject | None:
        """Write to a temporary file beside ``uri``, check size and checksums, ``fsync``,
        rename over ``uri``, then write the sidecar for the version written."""
        path = self._path(uri)
        self._root_exists(uri)
        if not path.name or _hidden(path.name):
            raise BackendError(f"{uri}: not a name an object may have here")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path(f"file://{path.parent}/")  # made under the root, not through a link out
        tmp = path.with_name(f".{path.name}{_TEMP}{secrets.token_hex(6)}")
        hashers = {a: hasher(a) for a in ALGORITHMS}
        n = 0
        try:
            with tmp.open("wb") as out:
                while chunk := body.read(CHUNK):
                    for h in hashers.values():
                        h.update(chunk)
                    out.write(chunk)
                    n += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            got = {a: h.hexdigest() for a, h in hashers.items()}
            if n != size:
                raise ChecksumMismatchError(uri, f"{size} bytes", f"{n} bytes received")
            for algorithm, want in checksums.items():
                if algorithm in got and got[algorithm] != want:
                    raise ChecksumMismatchError(uri, f"{algorithm}:{want}",
                                                f"{algorithm}:{got[algorithm]} received")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        version = _version(path.stat())
        _write_sidecar(path, {"version": version, "checksums": got,
                              "content_type": content_type, "metadata": dict(metadata or {}),
                              "tags": [list(t) for t in tags]})
        return StoredObject(uri, n, version, got, content_type, dict(metadata or {}))


class _ReaderIO:
    """An :class:`~placer.storage.ObjectReader` where ``write`` wants a binary file."""

    def __init__(self, reader: ObjectReader) -> None:
        self._reader = reader

    def read(self, n: int = -1) -> bytes:
        return self._reader.read(CHUNK if n < 0 else n)


def _version(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"


def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}{_SIDECAR}")


def _read_sidecar(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_sidecar(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_sidecar(path: Path, data: dict[str, Any]) -> None:
    side = _sidecar(path)
    tmp = side.with_name(f"{side.name}{_TEMP}{secrets.token_hex(6)}")
    tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
    os.replace(tmp, side)
