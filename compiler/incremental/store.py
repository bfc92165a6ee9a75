"""The content-addressed result cache on disk: ``.llmcc/cache/`` of the config repository.

An entry is one file, ``v1/<kk>/<key>.json``: a header line and a payload.
The header is ``{"format", "compiler", "key", "sha256", "size"}``; the payload
is canonical JSON (``put``), or bytes its writer encodes and its reader decodes
and type-checks after these checks (``put_bytes``: parsed documents and rendered
scalars, ``compiler.incremental.parsed``). A large value (a target's sealed modules) is a blob beside
it, ``v1/blobs/<dd>/<sha256>``, named by the SHA-256 of its bytes and checked
against it when read. Read, an entry is trusted only when, in order:

1. it is a regular file opened without following a symlink (``O_NOFOLLOW``),
   at most ``MAX_ENTRY_BYTES``, owned by this user, in directories that are
   not symlinks, are owned by this user and no one else can write to (else
   another local user could plant an entry: its key and digest are computed
   from public inputs, so only the file system says who wrote it);
2. its header parses and names this format, this compiler version and the key
   it was looked up by (an entry copied from another repository, tool version
   or key is foreign);
3. its payload has the size and SHA-256 its header gives.

Anything else is a miss: the caller rebuilds the target and the entry is
replaced. An entry is written whole under a pending name beside its own
(``.<key>.<pid>.<n>.pending``, created with ``O_EXCL``: never through a file
or link already there) and renamed into place (``stage``, then ``commit``), so
concurrent runs read an old entry or a new one, never a partial one; two runs
writing the same key write equivalent results. A build worker stages the
entries of the targets it built and the parent commits them once it has
checked that their keys still hold (``compiler.incremental.run``): one rename
each in the parent instead of a whole write. A blob is created in place,
create-only, with no rename: it is named by its SHA-256, so a blob being
written or torn is a miss when read, and one found damaged is deleted so the
next write makes it whole. Nothing here is fsynced: an entry or blob torn by a
power loss fails its digest and is a miss, and syncing every entry made a
compile that fills the cache slower than one without it.

Eviction: after a run that wrote entries, a staged entry older than a day (its
run was killed before it committed) is deleted, and when the entries hold more than
``max_bytes`` (``LLMCC_CACHE_MAX_BYTES``, default 256 MiB), the least recently
used (oldest modification time; a hit touches its entry) are deleted until
they hold at most three quarters of it. Deleting the directory is always safe.
Knowing how much they hold takes a stat of every file (~7 ms for xlarge's
~1,300), so a run does it only when it must: the *tally* (an entry like any
other, under ``USAGE_KEY``) keeps the bytes the last scan found plus every
byte written since, which is never less than what the entries hold (a
rewritten entry counts twice, a deleted one stays counted). A run that wrote
only through this object (no forked build workers: ``forked``) adds its
bytes; it scans when the sum passes ``max_bytes``, when the tally is absent,
damaged or foreign, and at the latest every ``USAGE_SCAN_RUNS`` runs (two
runs adding to the same tally at once count one of them: bounded so).

The cache is best-effort (issue 14 §2): no method raises ``OSError``. A
directory that is missing, a file where a directory should be, a full or
read-only disk, a permission refused, or another process deleting the cache
mid-run reads as a miss or leaves an entry unwritten; ``trouble`` keeps the
first such failure of a write so the command can say so in one warning line.
What a command writes outside the cache (``dist/``) never depends on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import stat
import time
from pathlib import Path

from compiler import __version__, fileops
from compiler.bundle.canonical import canonical_json
from compiler.jsontypes import JSONObject

CACHE_DIR = ".llmcc/cache"
FORMAT = "llmcc-cache/1"
MAX_ENTRY_BYTES = 64 << 20
DEFAULT_MAX_BYTES = 256 << 20
MAX_BYTES_ENV = "LLMCC_CACHE_MAX_BYTES"
_VERSION_DIR = "v1"
_BLOBS = "blobs"
USAGE_KEY = hashlib.sha256(f"usage\0{FORMAT}".encode()).hexdigest()  # the tally (module doc, "Eviction")
USAGE_SCAN_RUNS = 32  # runs that trust the tally before one scans anyway
PENDING = ".pending"  # the suffix of an entry staged for ``commit``
PENDING_MAX_AGE = 24 * 3600  # seconds: a staged entry this old was left by a run that never committed it
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_staged = itertools.count()  # numbers this process's pending names


class ResultCache:
    """Entries by key (64 hex digits) under ``root``; a damaged or foreign entry reads as absent."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, compiler: str = __version__) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.compiler = compiler
        self.hits = 0
        self.misses = 0
        self.written = 0
        self.written_bytes = 0  # of the entries and blobs this object wrote (the tally's addition)
        self._sizes: dict[str, int] = {}  # pending name -> bytes, of the entries this object staged
        self.forked = False  # forked workers wrote through copies of this object: their bytes are not counted
        self.refused: str | None = None  # why the cache is off for this run (an unsafe directory)
        self.trouble: str | None = None  # the first write or eviction that failed (the run goes on without it)
        self._usable: bool | None = None
        self._safe: set[str] = set()  # directories found safe in this run (only their owner can replace them)
        self._top_text: str | None = None  # root/v1 as a string (``_entry``)

    def usable(self) -> bool:
        """Whether the cache directory is a real directory (or can be made one), not a symlink anywhere,
        owned by this user and writable by no one else (``refused`` then says why not)."""
        if self._usable is None:
            self._usable = self._make_dirs()
        return self._usable

    def _make_dirs(self) -> bool:
        top = self.root.parent
        for d in (top, self.root, self.root / _VERSION_DIR):
            try:
                st = d.lstat()
            except FileNotFoundError:
                try:
                    d.mkdir(mode=0o700)
                except OSError:
                    return False
                continue
            except OSError:
                return False
            if not stat.S_ISDIR(st.st_mode):
                return False  # a symlink or a file: the cache is off for this run
            # .llmcc/ may hold a file:// store made under the umask; the cache below it is llmcc's alone
            problem = _unsafe(st) if d != top else None
            if problem:
                self.refused = f"{d}: {problem}: the result cache is off (delete the directory to start afresh)"
                return False
        ignore = self.root / ".gitignore"
        with contextlib.suppress(OSError):
            if not ignore.exists() and not ignore.is_symlink():
                # git never takes the cache, even where the repository's .gitignore does not name it
                fileops.write_atomic(ignore, b"# created by llmcc: the result cache is never committed\n*\n")
        return True

    def _failed(self, e: OSError) -> None:
        """Note the first failed write or eviction (``trouble``): the cache goes on best-effort."""
        if self.trouble is None:
            reason = e.strerror or type(e).__name__
            self.trouble = f"{self.root}: {reason}: results of this run were not all kept in the result cache"

    def _path(self, key: str) -> Path | None:
        if len(key) != 64 or key.strip("0123456789abcdef"):
            return None
        return self.root / _VERSION_DIR / key[:2] / f"{key}.json"

    def _entry(self, key: str) -> str | None:
        """``_path(key)`` as a string: the read path makes no ``Path`` (a warm run reads ~270 entries)."""
        if len(key) != 64 or key.strip("0123456789abcdef"):
            return None
        return f"{self._top}/{key[:2]}/{key}.json"

    @property
    def _top(self) -> str:
        top = self._top_text
        if top is None:
            top = self._top_text = os.fspath(self.root / _VERSION_DIR)
        return top

    def get(self, key: str) -> JSONObject | None:
        """The payload stored under ``key``, verified (see the module doc); None on any doubt."""
        path = self._entry(key)
        payload = None if path is None or not self.usable() else self._read(path, key)
        if path is None or payload is None:
            self.misses += 1
            return None
        self.hits += 1
        with contextlib.suppress(OSError):
            os.utime(path, follow_symlinks=False)  # recently used: evicted last
        return payload

    def _read_file(self, path: Path | str) -> bytes | None:
        """The bytes of a regular file not reached through a symlink, at most ``MAX_ENTRY_BYTES``."""
        path = os.fspath(path)
        parent = os.path.dirname(path)
        try:
            for d in (parent, os.path.dirname(parent)):
                if d not in self._safe:
                    if not _safe_dir(Path(d)):
                        return None
                    self._safe.add(d)
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None  # absent, or a symlink (ELOOP)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_BYTES or st.st_uid != os.geteuid():
                return None
            # the size fstat gave (entries are replaced by rename, never grown in place; a blob is
            # created in place, and one still being written reads short: bytes read past a change
            # fail the header's size and SHA-256, or the blob's name, like any damaged file)
            data = os.read(fd, st.st_size)
            while len(data) < st.st_size:  # a short read: the rest, up to the end of the file
                more = os.read(fd, st.st_size - len(data))
                if not more:
                    break
                data += more
            return data
        except OSError:
            return None
        finally:
            os.close(fd)

    def _read(self, path: str, key: str) -> JSONObject | None:
        body = self._read_body(path, key)
        if body is None:
            return None
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # bad JSON or UTF-8 (UnicodeDecodeError is a ValueError); too deep
            return None
        return payload if isinstance(payload, dict) else None

    def _read_body(self, path: str, key: str) -> bytes | None:
        """The payload bytes of the entry at ``path``, after checks 1-3 of the module doc; None on any doubt."""
        data = self._read_file(path)
        if data is None:
            return None
        head, sep, body = data.partition(b"\n")
        if not sep:
            return None
        try:
            header = json.loads(head)
        except (ValueError, RecursionError):
            return None
        if not isinstance(header, dict):
            return None
        if (header.get("format"), header.get("compiler"), header.get("key")) != (FORMAT, self.compiler, key):
            return None
        if header.get("size") != len(body) or header.get("sha256") != hashlib.sha256(body).hexdigest():
            return None
        return body

    def get_bytes(self, key: str) -> bytes | None:
        """The payload bytes stored under ``key`` by ``put_bytes``, verified like ``get``'s; None on any doubt.

        The caller decodes them and checks their shape: a payload that does not decode is a miss too.
        """
        path = self._entry(key)
        body = None if path is None or not self.usable() else self._read_body(path, key)
        if path is None or body is None:
            self.misses += 1
            return None
        self.hits += 1
        with contextlib.suppress(OSError):
            os.utime(path, follow_symlinks=False)
        return body

    def get_blob(self, digest: str) -> bytes | None:
        """The bytes whose SHA-256 is ``digest`` (64 hex digits), checked; None when absent or damaged.

        A damaged blob (torn by a crash, or being written by another process) is deleted: the
        next ``put_blob`` of those bytes writes it whole.
        """
        path = self._blob_path(digest)
        if path is None or not self.usable():
            return None
        data = self._read_file(path)
        if data is None:
            return None
        if hashlib.sha256(data).hexdigest() != digest:
            with contextlib.suppress(OSError):
                path.unlink()  # its directories were found safe by ``_read_file``
            return None
        with contextlib.suppress(OSError):
            os.utime(path, follow_symlinks=False)
        return data

    def put_blob(self, data: bytes) -> str:
        """Store ``data`` by its SHA-256 (kept when already there); the digest.

        Create-only (``O_EXCL``), no temp file and no rename: a reader checks the digest.
        """
        digest = hashlib.sha256(data).hexdigest()
        path = self._blob_path(digest)
        assert path is not None
        if not self.usable():
            return digest
        try:
            if self._dirs(path.parent.parent, path.parent):
                made = _create(path, data, keep=True)
                self.written += made
                self.written_bytes += made * len(data)
        except OSError as e:
            self._failed(e)  # a cache: not storing is always safe
        return digest

    @staticmethod
    def _dirs(*dirs: Path) -> bool:
        """Make each of ``dirs`` (0700) unless it is a directory already; False when one is a symlink or a file."""
        for d in dirs:
            try:
                st = d.lstat()
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    d.mkdir(mode=0o700)
                st = d.lstat()
            if not stat.S_ISDIR(st.st_mode):
                return False
        return True

    def _blob_path(self, digest: str) -> Path | None:
        if self._path(digest) is None:
            return None
        return self.root / _VERSION_DIR / _BLOBS / digest[:2] / digest

    def put(self, key: str, payload: JSONObject) -> None:
        """Store ``payload`` under ``key``; a failure to write leaves the cache as it was (it is a cache)."""
        self.put_bytes(key, canonical_json(payload))

    def put_bytes(self, key: str, body: bytes) -> None:
        """Store the payload bytes ``body`` under ``key`` (``get_bytes`` reads them), as ``put`` does."""
        pending = self.stage(key, body)
        if pending is not None:
            self.commit(key, pending)

    def stage(self, key: str, body: bytes) -> str | None:
        """Write the entry of payload bytes ``body`` for ``key`` whole, under a pending name beside it, for
        ``commit`` to put in place (a build worker stages, the parent commits); None when not written
        (``trouble`` says why) or the cache is off."""
        path = self._path(key)
        if path is None or not self.usable():
            return None
        header: JSONObject = {
            "format": FORMAT,
            "compiler": self.compiler,
            "key": key,
            "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body),
        }
        pending = path.with_name(f".{key}.{os.getpid()}.{next(_staged)}{PENDING}")
        try:
            if not self._dirs(path.parent):
                return None
            data = canonical_json(header) + b"\n" + body
            _create(pending, data, keep=False)  # a leftover of a killed run: replaced
        except OSError as e:
            self._failed(e)
            return None
        self._sizes[str(pending)] = len(data)  # for the tally, when this object commits it
        return str(pending)

    def commit(self, key: str, pending: str) -> None:
        """Put the entry ``stage`` wrote at ``pending`` in place under ``key`` (one rename)."""
        path = self._path(key)
        if path is None or not _pending_of(pending, path):
            return
        try:
            # Not renamed over the old entry: ext4 then starts writing the new one's data back at once
            # (``auto_da_alloc``), which made each commit wait on the disk (about 4x slower, more under load).
            # Meanwhile a reader misses (it is a cache); two runs committing the same key: either one.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.replace(pending, path)
        except OSError as e:
            self._failed(e)
            self.drop(pending)
            return
        self.written += 1
        self.written_bytes += self._sizes.pop(pending, 0)  # staged by a forked worker: 0 (``forked`` scans)

    def drop(self, pending: str) -> None:
        """Delete an entry ``stage`` wrote that is not to be committed (its key no longer holds)."""
        if pending.endswith(PENDING):
            with contextlib.suppress(OSError):
                os.unlink(pending)

    def discard(self, key: str) -> None:
        """Delete the entry under ``key``, if there is one (a cache: failing to is harmless)."""
        path = self._path(key)
        if path is not None and self.usable() and _safe_dir(path.parent):
            with contextlib.suppress(OSError):
                path.unlink()

    def evict(self) -> int:
        """Delete least recently used entries while they hold more than ``max_bytes``; the count deleted.

        A cache directory gone or unreadable meanwhile (another process deleted it) ends it: nothing raises.
        """
        if not self.written or not self.usable():
            return 0
        try:
            if self._tallied():
                return 0
            deleted, total = self._evict()
            self._tally(total, 0)
            return deleted
        except OSError as e:
            self._failed(e)
            return 0

    def _tallied(self) -> bool:
        """Whether the tally plus this run's bytes says the entries hold at most ``max_bytes`` (no scan
        needed): then the sum is the new tally. False (scan) on any doubt (module doc, "Eviction")."""
        if self.forked:
            return False
        path = self._entry(USAGE_KEY)
        usage = self._read(path, USAGE_KEY) if path is not None else None
        if usage is None or usage.keys() != {"bytes", "runs"}:
            return False
        total, runs = usage["bytes"], usage["runs"]
        if type(total) is not int or type(runs) is not int or total < 0 or not 0 <= runs < USAGE_SCAN_RUNS - 1:
            return False
        total += self.written_bytes
        if total > self.max_bytes:
            return False
        self._tally(total, runs + 1)
        return True

    def _tally(self, total: int, runs: int) -> None:
        self.put(USAGE_KEY, {"bytes": total, "runs": runs})

    def _evict(self) -> tuple[int, int]:
        """(entries deleted, bytes the entries hold after), from a stat of every file."""
        # os.scandir and str paths, not Path.iterdir: no Path made per entry (the scan is most of
        # what a run that wrote a few entries pays here: a third of it this way)
        entries: list[tuple[float, int, str]] = []
        stale = time.time() - PENDING_MAX_AGE
        top = self.root / _VERSION_DIR
        # never through a symlink: a linked blobs/ would have files outside the cache deleted
        subs = [*_dirs(str(top)), *(_dirs(str(top / _BLOBS)) if _safe_dir(top / _BLOBS) else [])]
        for sub in subs:
            if sub.name == _BLOBS:
                continue
            with os.scandir(sub.path) as it:
                for f in it:
                    with contextlib.suppress(OSError):
                        st = f.stat(follow_symlinks=False)
                        if f.name.endswith(PENDING) and st.st_mtime < stale:
                            os.unlink(f.path)  # staged by a run killed before it committed
                            continue
                        entries.append((st.st_mtime, st.st_size, f.path))
        total = sum(size for _, size, _ in entries)
        if total <= self.max_bytes:
            return 0, total
        deleted = 0
        for _, size, name in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes * 3 // 4:
                break
            with contextlib.suppress(OSError):
                os.unlink(name)
                total -= size
                deleted += 1
        return deleted, total


def _create(path: Path, data: bytes, *, keep: bool) -> int:
    """Create ``path`` (mode 0600) holding ``data``: 1, or 0 when ``keep`` and a regular file is there.

    ``O_EXCL``: never through a file or symlink already at ``path``. What is there (with ``keep``:
    unless a regular file) is deleted and the file created once more. Raises OSError (nothing is
    left behind but a file some other process made meanwhile).
    """
    try:
        fd = os.open(path, _CREATE, 0o600)
    except FileExistsError:
        if keep and stat.S_ISREG(path.lstat().st_mode):
            return 0
        path.unlink()
        fd = os.open(path, _CREATE, 0o600)
    try:
        os.fchmod(fd, 0o600)  # exactly, not narrowed by the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            path.unlink()
        raise
    os.close(fd)
    return 1


def _pending_of(pending: str, path: Path) -> bool:
    """Whether ``pending`` is a name ``stage`` gives for the entry at ``path``."""
    where, _, name = pending.rpartition("/")
    return where == str(path.parent) and name.startswith(f".{path.stem}.") and name.endswith(PENDING)


def _unsafe(st: os.stat_result) -> str | None:
    """What makes a cache directory with this ``lstat`` unsafe to trust, or None."""
    if st.st_uid != os.geteuid():
        return f"owned by another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _dirs(path: str) -> list[os.DirEntry[str]]:
    """The directories in ``path`` that ``_safe_dir`` accepts (a symlink is not one)."""
    found = []
    with os.scandir(path) as it:
        for entry in it:
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode) and _unsafe(st) is None:
                    found.append(entry)
    return found


def _safe_dir(path: Path) -> bool:
    """Whether ``path`` is a directory, not a symlink, that only this user can have written to."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and _unsafe(st) is None


def max_bytes_from(env: dict[str, str] | os._Environ[str]) -> int:
    """``LLMCC_CACHE_MAX_BYTES`` when it is a whole number, else the default."""
    text = env.get(MAX_BYTES_ENV, "")
    return int(text) if text.isascii() and text.isdigit() else DEFAULT_MAX_BYTES
