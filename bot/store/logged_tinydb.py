"""The default case store: TinyDB for queries, an fsync'd append-only log for
durability, periodic snapshots for fast opening.

Why not TinyDB's own storages: ``JSONStorage`` rewrites the whole file on
every write (0.3 s per write at 10k cases, 5 s at 100k) and a crash in the
middle corrupts it; ``CachingMiddleware`` loses whatever was not flushed when
the process is killed.  And TinyDB's ``Table`` write methods go through
``_update_table``, which rebuilds the whole table dict on every write (O(N)).

So:

* TinyDB runs over :class:`_LiveStorage`, which hands TinyDB the live
  in-memory dict (no copy).  TinyDB answers the queries (``Query()``) for
  ``list`` and ``purge``; ``due_reminders`` uses a sorted index on the due
  time (:mod:`bot.store.local`); writes bypass ``Table`` and touch
  the dict directly, so a write costs O(1) whatever the number of cases.
* What TinyDB holds per case is a small *index* document (owner, status,
  type, subtype, platform, province, times, reminders).  The full case is
  kept as compact UTF-8 JSON bytes (with the index doc's JSON beside it, for
  snapshots) and decoded on read.  That keeps 100k cases in under 300 MB
  rather than ~1 GB of Python dicts, and decoding on read is the deep copy
  every reader needs anyway.
* Every write appends one JSON line to ``cases.log`` and fsyncs it before
  returning: ``{"seq":N,"op":"put","table":"cases","id":...,"doc":{...}}``
  (``"op":"del"`` without doc; several ops in one write become one
  ``"op":"batch"`` line, so they are atomic).  Tables: ``cases``, ``states``
  (conversation states), ``outbox`` (notifications).  Each log file starts
  with ``{"begin":N}``, the last entry before it, and entries are numbered
  without gaps: a log that does not continue where the snapshot ends (a
  missing ``cases.json``) is refused rather than opened with cases missing.
* Group commit: writes queue for one writer thread, which runs them in
  order (each applied in memory as soon as its line is written, so the next
  sees it), then fsyncs once for the whole batch and only then tells their
  callers.  Under load many writes share one fsync; a lone write pays one.
  Readers may see a write a moment before its caller hears "done" (never a
  write that then fails, unless the fsync itself fails, which stops the
  store: restart huqi).
* Opening loads the snapshot ``cases.json`` and replays the log.  A torn or
  garbled *last* line (a crash in the middle of a write, which was therefore
  never acknowledged) is cut off by truncating the file to the last good
  newline.  Damage anywhere else raises :class:`StoreCorrupt`.
* Compaction (every ``compact_every`` log entries or ``compact_bytes`` of
  log, after ``purge`` and on close): the log is rotated to
  ``cases.log.<seq>`` and a background thread writes the new snapshot to a
  temp file, fsyncs it, ``os.replace``-s it over ``cases.json``, fsyncs the
  directory and deletes the rotated log.  Writes carry on meanwhile (the
  captured state is a shallow copy of immutable bytes); the snapshot goes out
  in small flushed chunks that never overlap a log fsync, so it does not make
  writes wait behind 150 MB of write-back.  A crash at any point leaves
  either the old snapshot plus logs, or the new snapshot (log entries with
  ``seq`` <= the snapshot's are skipped on replay).
* ``cases.json`` is valid JSON (``{"meta": .., "index": {id: ix},
  "cases": {id: doc}, "states": {key: state}, "outbox": {id: msg},
  "retired": [purged ids]}``), written one record per line so it can be
  loaded without parsing the case bodies.  Purged ids are kept so a case
  number is never issued twice.

Files are created 0600, the directory 0700.  Logs name case ids and counts,
never case content.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, Optional

from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from bot.store import (
    CLOSED,
    StoreClosed,
    StoreCorrupt,
    StoreError,
    clone_json,
    closed_time,
    field_matches,
    owner_key,
)
from bot.store.local import LocalStore, json_bytes
from bot.store.lock import DirLock

__all__ = ["LoggedTinyDBStore", "seed_snapshot", "SNAPSHOT", "LOG"]

log = logging.getLogger("huqi.store")

SNAPSHOT = "cases.json"
LOG = "cases.log"
_SEGMENT = re.compile(r"^cases\.log\.(\d+)$")
_FORMAT = "huqi-cases"
_VERSION = 2  # 2: + states, outbox, retired case numbers; 1 is still read
#: Tables of the log besides "cases": value stored as JSON bytes / as a dict.
_TABLES = ("cases", "states", "outbox")

#: Case fields copied into the TinyDB index document (scalars or lists of
#: scalars only); ``owner`` is indexed as "messenger:user_id".
IX_FIELDS = (
    "status",
    "type",
    "subtype",
    "platform",
    "province",
    "created_at",
    "updated_at",
    "closed_at",
)
_INTERNED = frozenset({"status", "type", "subtype", "platform", "province"})
_SCALARS = (str, int, float, bool)
#: Most writes that share one fsync.
_GROUP_MAX = 256
#: Background snapshots: bytes written+flushed per chunk, and the pause
#: between chunks (100k cases = 150 MB -> a few seconds in the background).
_BG_CHUNK = 512 << 10
_BG_PAUSE = 0.005


# --------------------------------------------------------------------------
# TinyDB over the live dict


class _LiveStorage(Storage):
    """Hands TinyDB the live ``{table: {id: doc}}`` dict, without copying."""

    def __init__(self, tables: dict):
        self.tables = tables

    def read(self) -> dict:
        return self.tables

    def write(self, data: dict) -> None:
        # Writing through TinyDB would skip the log (and cost O(N)).
        raise RuntimeError("write cases through LoggedTinyDBStore, not through TinyDB")


class _StrIdTable(Table):
    """Documents are keyed by case id (a string), not TinyDB's int ids."""

    document_id_class = str


class _LiveTinyDB(TinyDB):
    table_class = _StrIdTable


# --------------------------------------------------------------------------
# Encoding


_dumps = json_bytes


def _make_ix(doc: dict) -> dict:
    """The index document TinyDB queries for one case."""
    ix: dict = {}
    try:
        ix["owner"] = owner_key(doc.get("owner"))
    except ValueError:
        pass
    for field in IX_FIELDS:
        value = doc.get(field)
        if value is None:
            continue
        if isinstance(value, str):
            ix[field] = sys.intern(value) if field in _INTERNED and len(value) <= 64 else value
        elif isinstance(value, _SCALARS):
            ix[field] = value
        elif isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value):
            ix[field] = list(value)
    rems = doc.get("reminders")
    if rems:
        ix["reminders"] = clone_json(rems)
    return ix


def _intern_ix(ix: dict) -> None:
    for field in _INTERNED:
        value = ix.get(field)
        if isinstance(value, str) and len(value) <= 64:
            ix[field] = sys.intern(value)


def _entry(op: str, cid: str, blob: Optional[bytes], table: str = "cases") -> bytes:
    head = b'{"op":"%s","table":"%s","id":%s' % (op.encode(), table.encode(), json.dumps(cid).encode())
    if blob is None:
        return head + b"}"
    return head + b',"doc":' + blob + b"}"


def _settle(fut: asyncio.Future, result: Any, exc: Optional[BaseException]) -> None:
    if fut.cancelled():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)


# --------------------------------------------------------------------------
# Files


def _make_dir(path: str) -> None:
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)  # independent of the umask


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_private(path: str, flags: int) -> int:
    fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # independent of the umask, and for old files
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write_all(fd: int, parts: list) -> None:
    """``writev`` the buffers (the GIL is released during the syscall)."""
    parts = [p for p in parts if p]
    while parts:
        written = os.writev(fd, parts)
        if written == sum(map(len, parts)):
            return
        i = 0  # a short write (rare): drop what went out, retry the rest
        while written >= len(parts[i]):
            written -= len(parts[i])
            i += 1
        parts = [memoryview(parts[i])[written:]] + parts[i + 1 :]


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _write_snapshot(
    data_dir: str,
    seq: int,
    records: dict,
    io_lock: Optional[threading.Lock] = None,
    chunk: int = 8 << 20,
    pause: float = 0.0,
    extra: Optional[dict] = None,
) -> None:
    """Atomically replace ``cases.json`` with ``records`` ({id: (ix json,
    doc json)}) and ``extra`` (``states`` {key: json}, ``outbox`` {id: msg},
    ``retired`` [ids], ``outbox_next`` n).

    In the background (``io_lock`` given) this must not hurt the latency of
    the log's fsyncs, which share the disk: a big write-back in flight makes
    a small fsync wait for it (measured: p99 0.3 ms -> 30 ms).  So the bytes
    go out in small chunks, each written *and* flushed while holding
    ``io_lock`` (the log writer takes it around write+fsync, so the two never
    overlap at the device and a log write waits at most for one chunk), with
    a short pause between chunks.  Python work per record is kept tiny and
    the kernel copies happen in ``writev`` with the GIL released.
    """
    extra = extra or {}
    states = extra.get("states") or {}
    outbox = extra.get("outbox") or {}
    final = os.path.join(data_dir, SNAPSHOT)
    tmp = final + ".tmp"
    lock = io_lock if io_lock is not None else _NoLock()
    fd = _open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        meta = {
            "format": _FORMAT,
            "version": _VERSION,
            "seq": seq,
            "cases": len(records),
            "states": len(states),
            "outbox": len(outbox),
            "outbox_next": int(extra.get("outbox_next") or 1),
        }
        pending: list = [b'{"meta": ' + json.dumps(meta).encode() + b",\n"]
        size = len(pending[0])

        def flush() -> None:
            nonlocal pending, size
            with lock:
                _write_all(fd, pending)
                os.fdatasync(fd)
            pending, size = [], 0
            if pause:
                time.sleep(pause)

        sections = (
            (b"index", ((k, r[0]) for k, r in records.items())),
            (b"cases", ((k, r[1]) for k, r in records.items())),
            (b"states", states.items()),
            (b"outbox", ((k, _dumps(m)) for k, m in outbox.items())),
        )
        for name, items in sections:
            pending.append(b'"' + name + b'": {\n')
            sep = b""
            for key, body in items:
                pending += (sep, b'"', key.encode(), b'": ', body)
                size += len(body) + 20
                sep = b",\n"
                if size >= chunk or len(pending) >= 1000:  # IOV_MAX is 1024
                    flush()
            pending.append((b"\n" if sep else b"") + b"},\n")
        retired = sorted(extra.get("retired") or ())
        pending.append(b'"retired": ' + json.dumps(retired).encode() + b"}\n")
        flush()
        os.fsync(fd)
    finally:
        os.close(fd)
    with lock:
        os.replace(tmp, final)
        _fsync_dir(data_dir)


def _lines(f, block: int = 4 << 20):
    """Yield ``(buf, start, end)`` for each line of a binary file (``end``
    after the newline; a last line without one ends at ``len(buf)``).

    Reads big blocks and hands out offsets instead of line objects, so that
    loading 100k records leaves no holes between the slices that are kept.
    """
    buf, pos = b"", 0
    while True:
        nl = buf.find(b"\n", pos)
        if nl >= 0:
            yield buf, pos, nl + 1
            pos = nl + 1
            continue
        more = f.read(block)
        if not more:
            if pos < len(buf):
                yield buf, pos, len(buf)
            return
        buf, pos = buf[pos:] + more, 0


def _read_snapshot(path: str) -> tuple[int, dict, dict, dict]:
    """(seq, {id: ix}, {id: (ix json, doc json)}, extra) from a snapshot,
    without parsing the case bodies; ``extra`` as :func:`_write_snapshot`
    takes it (states as JSON bytes)."""

    def bad(why: str) -> StoreCorrupt:
        return StoreCorrupt(f"{path}: {why}")

    def record(buf: bytes, start: int, end: int) -> tuple[int, int, int]:
        """Offsets of the id's closing quote and of the value in a record line."""
        q = buf.find(b'"', start + 1, end)
        if buf[start] != 0x22 or q < 0 or buf[q : q + 3] != b'": ':
            raise bad(f"damaged record line at byte {start}")
        stop = end - 2 if buf[end - 2 : end] == b",\n" else end - 1
        return q, q + 3, stop

    extra: dict = {"states": {}, "outbox": {}, "retired": [], "outbox_next": 1}
    with open(path, "rb", buffering=0) as f:
        lines = _lines(f)

        def section(name: bytes, closing: bytes) -> tuple[list, list]:
            buf, a, b = next(lines)
            if buf[a:b] != b'"' + name + b'": {\n':
                raise bad(f"{name.decode()} section missing")
            keys: list = []
            bodies: list = []
            for buf, a, b in lines:
                if buf[a:b] == closing:
                    return keys, bodies
                q, v0, v1 = record(buf, a, b)
                keys.append(buf[a + 1 : q].decode())
                bodies.append(buf[v0:v1])
            raise bad(f"truncated in the {name.decode()} section")

        try:
            buf, a, b = next(lines)
            first = buf[a:b]
            if not (first.startswith(b'{"meta": ') and first.endswith(b",\n")):
                raise bad("not a huqi snapshot")
            try:
                meta = json.loads(first[9:-2])
            except ValueError:
                raise bad("damaged header") from None
            version = meta.get("version")
            if meta.get("format") != _FORMAT or version not in (1, _VERSION):
                raise bad(f"unsupported format {meta.get('format')!r} v{version}")
            ids, raw_ix = section(b"index", b"},\n")
            case_ids, docs = section(b"cases", b"}}\n" if version == 1 else b"},\n")
            if case_ids != ids:
                raise bad("index and cases sections disagree")
            if version >= 2:
                keys, blobs = section(b"states", b"},\n")
                extra["states"] = dict(zip(keys, blobs))
                mids, raw_msgs = section(b"outbox", b"},\n")
                buf, a, b = next(lines)
                last = buf[a:b]
                if not (last.startswith(b'"retired": ') and last.endswith(b"}\n")):
                    raise bad("retired section missing")
                try:
                    msgs = json.loads(b"[" + b",".join(raw_msgs) + b"]")
                    extra["retired"] = json.loads(last[11:-2])
                    extra["outbox_next"] = int(meta.get("outbox_next") or 1)
                except ValueError:
                    raise bad("damaged outbox or retired section") from None
                extra["outbox"] = dict(zip(mids, msgs))
                if not (
                    len(extra["states"]) == meta.get("states") and len(extra["outbox"]) == meta.get("outbox")
                ):
                    raise bad("states or outbox section incomplete")
        except StopIteration:
            raise bad("truncated") from None
    if not len(ids) == len(docs) == meta.get("cases"):
        raise bad("index and cases sections disagree")
    try:
        # One parse for the whole index: the keys are shared by all docs.
        ix_docs = json.loads(b"[" + b",".join(raw_ix) + b"]")
    except ValueError:
        raise bad("damaged index section") from None
    index = dict(zip(ids, ix_docs))
    if len(index) != len(ids):
        raise bad("duplicate ids")
    return int(meta.get("seq", 0)), index, dict(zip(ids, zip(raw_ix, docs))), extra


def seed_snapshot(data_dir: str, cases: Iterable[dict]) -> int:
    """Write complete case documents straight into a new, empty data
    directory as a snapshot (benchmarks, imports).  Documents must already
    have ``id``, ``owner``, ``status``, ``created_at`` ... as the store
    would have set them.  Returns the number of cases."""
    data_dir = os.path.abspath(data_dir)
    _make_dir(data_dir)
    with DirLock(data_dir):
        for name in (SNAPSHOT, LOG):
            if os.path.exists(os.path.join(data_dir, name)):
                raise StoreError(f"{data_dir} is not empty")
        records: dict = {}
        for doc in cases:
            records[doc["id"]] = (_dumps(_make_ix(doc)), _dumps(doc))
        _write_snapshot(data_dir, 0, records)
    return len(records)


# --------------------------------------------------------------------------
# The store


class LoggedTinyDBStore(LocalStore):
    """Durable case store; see the module docstring.  Open with
    :func:`bot.store.open_store`."""

    def __init__(
        self,
        data_dir: str,
        clock=None,
        compact_every: int = 5000,
        compact_bytes: int = 64 << 20,
        compact_on_close: bool = True,
    ):
        super().__init__(clock=clock)
        self.data_dir = os.path.abspath(data_dir)
        self._compact_every = compact_every
        self._compact_bytes = compact_bytes
        self._compact_on_close = compact_on_close
        self._log_path = os.path.join(self.data_dir, LOG)
        _make_dir(self.data_dir)
        self._dirlock = DirLock(self.data_dir).acquire()
        try:
            # self._mem (LocalStore) guards the in-memory state; readers on
            # the event loop, the writer thread and the compaction thread all
            # take it briefly.
            self._tables: dict = {"cases": {}}
            # id -> (index doc as JSON bytes, case doc as JSON bytes)
            self._docs: dict[str, tuple[bytes, bytes]] = {}
            self._db = _LiveTinyDB(self._tables, storage=_LiveStorage)
            self._ix_table = self._db.table("cases", cache_size=0)
            self._seq = 0  # last seq written or replayed
            self._snap_seq = 0  # seq the current snapshot covers
            self._fd: Optional[int] = None
            self._log_size = 0
            self._log_base = 0  # size of the live log's header line
            self._dirty = False  # written to the log but not yet fsync'd
            self._log_entries = 0  # entries not yet in a snapshot
            self._broken: Optional[str] = None
            self._compactor: Optional[threading.Thread] = None
            # Held around every fsync'd log append and every chunk of a
            # background snapshot, so they never compete at the disk.
            self._io = threading.Lock()
            self._open_files()
            # One writer thread: fsync never blocks the event loop, and
            # writes run strictly one after another.
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="huqi-store")
            self._qlock = threading.Lock()
            self._queue: list = []  # (fn, future, loop) waiting for the writer
            self._draining = False
        except BaseException:
            if self._fd is not None:
                os.close(self._fd)
            self._dirlock.release()
            raise

    # -- opening -----------------------------------------------------------

    def _open_files(self) -> None:
        t0 = time.monotonic()
        d = self.data_dir
        try:
            os.unlink(os.path.join(d, SNAPSHOT + ".tmp"))  # an interrupted compaction
        except FileNotFoundError:
            pass
        snap = os.path.join(d, SNAPSHOT)
        if os.path.exists(snap):
            os.chmod(snap, 0o600)
            self._snap_seq, index, self._docs, extra = _read_snapshot(snap)
            self._seq = self._snap_seq
            for cid, ix in index.items():
                _intern_ix(ix)
                self._rem_index.set_case(cid, ix.get("owner"), ix.get("reminders"))
            self._tables["cases"] = index
            self._states = extra["states"]
            self._retired_ids = set(extra["retired"])
            for mid, msg in extra["outbox"].items():
                self._apply_outbox(mid, msg)
            self._ob_next = max(self._ob_next, extra["outbox_next"])
        segments = []
        for name in os.listdir(d):
            m = _SEGMENT.match(name)
            if m:
                segments.append((int(m.group(1)), os.path.join(d, name)))
        segments.sort()
        replayed = 0
        for upto, path in segments:
            if upto <= self._snap_seq:
                os.unlink(path)  # already in the snapshot
            else:
                replayed += self._replay(path, tail=False)
        if os.path.exists(self._log_path):
            replayed += self._replay(self._log_path, tail=True)
        created = not os.path.exists(self._log_path)
        self._fd = _open_private(self._log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        self._log_size = os.fstat(self._fd).st_size
        if not self._log_size:
            self._write_header()
        if created:
            _fsync_dir(d)
        self._log_entries = replayed
        released = self._release_claims()
        if released:
            log.info("outbox: %d messages claimed by a previous process are pending again", released)
        log.info(
            "case store opened: %d cases, %d log entries replayed, %.2f s",
            len(self._docs),
            replayed,
            time.monotonic() - t0,
        )

    def _write_header(self) -> None:
        """Start a new log with ``{"begin": seq}``: the entry it follows.
        On open this tells whether the snapshot (or a segment) that should
        hold the entries before it is missing."""
        line = b'{"begin":%d}\n' % self._seq
        self._append(line)
        self._log_base = len(line)

    def _gap(self, path: str, after: int, pos: int) -> StoreCorrupt:
        snap = os.path.join(self.data_dir, SNAPSHOT)
        if not os.path.exists(snap):
            why = f"{snap} is missing"
        else:
            why = f"{snap} ends at entry {self._snap_seq}"
        return StoreCorrupt(
            f"{why}, but {path} continues after entry {after} (byte {pos}): "
            f"entries {self._seq + 1}..{after} are lost.  Refusing to open; "
            f"restore {SNAPSHOT} (or the missing {LOG}.* files) from a backup"
        )

    def _replay(self, path: str, tail: bool) -> int:
        """Apply a log file's entries newer than what is loaded, checking
        that they continue it without a gap.  In the live log (``tail``) a
        torn/garbled last line is cut off."""
        with open(path, "rb") as f:
            data = f.read()
        pos, n, applied = 0, len(data), 0
        cut: Optional[int] = None
        while pos < n:
            nl = data.find(b"\n", pos)
            if nl < 0:
                cut = pos  # no newline: the write never completed
                break
            try:
                rec = json.loads(data[pos:nl])
                if not isinstance(rec, dict):
                    raise ValueError
                seq = rec["seq"] if "begin" not in rec else rec["begin"]
                if not isinstance(seq, int) or isinstance(seq, bool):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                if not data[nl + 1 :].strip(b"\x00\n\r\t "):
                    cut = pos  # garbled last line
                    break
                raise StoreCorrupt(f"{path}: damaged entry at byte {pos}") from None
            if "begin" in rec:
                if pos:
                    raise StoreCorrupt(f"{path}: misplaced log header at byte {pos}")
                if seq > self._seq:  # entries up to `seq` should be loaded by now
                    raise self._gap(path, seq, pos)
            elif seq > self._seq:
                if seq != self._seq + 1:
                    raise self._gap(path, seq - 1, pos)
                self._apply_entry(rec, path, pos)
                self._seq = seq
                applied += 1
            elif seq > self._snap_seq:
                raise StoreCorrupt(f"{path}: entry seq {seq} out of order at byte {pos}")
            pos = nl + 1
        if cut is not None:
            if not tail:
                raise StoreCorrupt(f"{path}: incomplete entry at byte {cut}")
            log.warning("case log: cut off a torn last entry (%d bytes)", n - cut)
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.ftruncate(fd, cut)
                os.fsync(fd)
            finally:
                os.close(fd)
        return applied

    def _apply_entry(self, rec: dict, path: str, pos: int) -> None:
        ops = rec["ops"] if rec.get("op") == "batch" else [rec]
        try:
            for op in ops:
                table = op.get("table", "cases")
                key = op["id"]
                if not isinstance(key, str) or table not in _TABLES or op["op"] not in ("put", "del"):
                    raise ValueError
                doc = op["doc"] if op["op"] == "put" else None
                if table == "cases":
                    if doc is not None:
                        ix = _make_ix(doc)
                        self._put_mem(cid=key, ix=ix, record=(_dumps(ix), _dumps(doc)))
                    else:
                        self._del_mem(key)
                elif table == "states":
                    self._apply([("state", key, None if doc is None else _dumps(doc))])
                else:
                    if doc is not None and not isinstance(doc, dict):
                        raise ValueError
                    self._apply([("outbox", key, doc)])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise StoreCorrupt(f"{path}: unknown entry at byte {pos}") from None

    # -- memory ------------------------------------------------------------

    def _put_mem(self, cid: str, ix: dict, record: tuple) -> None:
        self._tables["cases"][cid] = ix
        self._docs[cid] = record
        self._rem_index.set_case(cid, ix.get("owner"), ix.get("reminders"))

    def _del_mem(self, cid: str) -> None:
        self._tables["cases"].pop(cid, None)
        self._docs.pop(cid, None)
        self._rem_index.drop_case(cid)
        self._retired_ids.add(cid)

    # -- primitives for CaseStore -------------------------------------------

    def _load(self, case_id: str) -> Optional[dict]:
        with self._mem:
            rec = self._docs.get(case_id)
        return json.loads(rec[1]) if rec is not None else None

    def _has(self, case_id: str) -> bool:
        with self._mem:
            return case_id in self._docs

    def _detach(self, doc: dict) -> dict:
        return doc  # the store keeps bytes, never this object

    select_in_thread = True          # _select holds self._mem while it copies the blobs

    def _select(self, okey: Optional[str], filters: dict) -> Iterable[dict]:
        q = Query()
        cond = None
        if okey is not None:
            cond = q.owner == okey
        for key, wanted in filters.items():
            if key == "older_than":
                c = q.created_at < wanted
            elif key == "newer_than":
                c = q.created_at >= wanted
            elif key in IX_FIELDS and wanted is not None and not (
                isinstance(wanted, tuple) and None in wanted
            ):
                c = q[key].test(field_matches, wanted)
            else:
                continue  # not indexed: CaseStore.list re-checks every doc
            cond = c if cond is None else cond & c
        with self._mem:
            if cond is None:
                blobs = [rec[1] for rec in self._docs.values()]
            else:
                blobs = [self._docs[d.doc_id][1] for d in self._ix_table.search(cond)]
        return [json.loads(b) for b in blobs]

    def _closed_before(self, cutoff_iso: str) -> list:
        with self._mem:
            hits = self._ix_table.search(Query().status == CLOSED)
        return [d.doc_id for d in hits if closed_time(d) < cutoff_iso]

    async def _write(self, fn: Callable[[], Any]) -> Any:
        # No asyncio lock: the one writer thread runs writes one after
        # another, and queued writes share an fsync (group commit).
        self._check_open()
        return await self._run_write(fn)

    async def _run_write(self, fn: Callable[[], Any]) -> Any:
        """Queue ``fn`` for the writer thread; resolves once what it wrote
        is on disk."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._qlock:
            self._queue.append((fn, fut, loop))
            start, self._draining = not self._draining, True
        if start:
            try:
                self._pool.submit(self._drain)
            except RuntimeError:  # the writer has shut down: the store is closing
                with self._qlock:
                    self._queue = [q for q in self._queue if q[1] is not fut]
                    self._draining = False
                raise StoreClosed("the case store is closed") from None
        return await fut

    def _drain(self) -> None:
        """Writer thread: run the queued writes in order, then one fsync for
        all of them, then tell their callers.  Each write sees the ones
        before it (they are applied in memory when written); no caller hears
        "done" before its write is durable."""
        while True:
            with self._qlock:
                batch, self._queue = self._queue[:_GROUP_MAX], self._queue[_GROUP_MAX:]
                if not batch:
                    self._draining = False
                    return
            outcomes = []
            for fn, fut, loop in batch:
                try:
                    outcomes.append((fut, loop, fn(), None))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    outcomes.append((fut, loop, None, exc))
            try:
                self._sync()
            except OSError as exc:
                self._broken = "the case log could not be synced to disk; restart huqi"
                err = StoreError(f"could not write the case log: {exc.strerror or exc}")
                outcomes = [(f, lp, None, e or err) for f, lp, _, e in outcomes]
            for fut, loop, result, exc in outcomes:
                try:
                    loop.call_soon_threadsafe(_settle, fut, result, exc)
                except RuntimeError:  # the loop is gone: nobody is waiting
                    pass

    def _sync(self) -> None:
        if self._dirty:
            with self._io:
                os.fsync(self._fd)
            self._dirty = False

    def _commit(self, ops: list) -> None:
        """Log ``ops`` as one line, fsync, then apply them in memory."""
        if self._broken:
            raise StoreError(self._broken)
        prepared = []
        entries = []
        for op, cid, doc in ops:
            if op == "put":
                ix = _make_ix(doc)
                prepared.append((op, cid, (ix, (_dumps(ix), _dumps(doc)))))
                entries.append(_entry("put", cid, prepared[-1][2][1][1]))
            elif op == "del":
                prepared.append((op, cid, None))
                entries.append(_entry("del", cid, None))
            elif op == "state":
                prepared.append((op, cid, doc))
                entries.append(_entry("put" if doc is not None else "del", cid, doc, "states"))
            elif op == "outbox":
                prepared.append((op, cid, doc))
                blob = _dumps(doc) if doc is not None else None
                entries.append(_entry("put" if doc is not None else "del", cid, blob, "outbox"))
            else:
                raise ValueError(op)
        seq = self._seq + 1
        if len(entries) == 1:
            line = b'{"seq":%d,' % seq + entries[0][1:] + b"\n"
        else:
            line = b'{"seq":%d,"op":"batch","ops":[' % seq + b",".join(entries) + b"]}\n"
        self._append(line, sync=False)
        self._seq = seq
        with self._mem:
            for op, cid, value in prepared:
                if op == "put":
                    self._put_mem(cid, *value)
                elif op == "del":
                    self._del_mem(cid)
                else:
                    self._apply([(op, cid, value)])
        self._log_entries += 1
        if self._log_entries >= self._compact_every or self._log_size >= self._compact_bytes:
            self._start_compaction()

    def _append(self, data: bytes, sync: bool = True) -> None:
        """Write ``data`` to the log; fsync now, or (``sync=False``) leave
        it to :meth:`_sync` once the batch is written."""
        start = self._log_size
        try:
            with self._io:
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                if sync:
                    os.fsync(self._fd)
                else:
                    self._dirty = True
        except OSError as exc:
            try:  # take back a partial line so the next write starts clean
                os.ftruncate(self._fd, start)
                os.fsync(self._fd)
            except OSError:
                self._broken = "the case log could not be repaired after a failed write; restart huqi"
            raise StoreError(f"could not write the case log: {exc.strerror or exc}") from exc
        self._log_size = start + len(data)

    # -- compaction --------------------------------------------------------

    def _rotate(self) -> tuple[int, dict]:
        """Capture the state and move the live log aside (writer thread).
        The captured bytes are immutable, so a shallow copy is a snapshot."""
        with self._mem:
            records = dict(self._docs)
            extra = {
                "states": dict(self._states),
                "outbox": dict(self._outbox),
                "retired": list(self._retired_ids),
                "outbox_next": self._ob_next,
            }
        cut = self._seq
        self._sync()  # the batch so far goes out with the old log
        if self._log_size > self._log_base:
            segment = f"{self._log_path}.{cut}"
            os.rename(self._log_path, segment)
            try:
                fd = _open_private(self._log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            except OSError:
                try:
                    os.rename(segment, self._log_path)
                except OSError:
                    self._broken = "the case log could not be rotated; restart huqi"
                raise
            os.close(self._fd)
            self._fd = fd
            self._log_size = 0
            self._write_header()
            _fsync_dir(self.data_dir)
        self._log_entries = 0
        return cut, (records, extra)

    def _snapshot(self, cut: int, state: tuple, background: bool = False) -> None:
        t0 = time.monotonic()
        records, extra = state
        if background:
            _write_snapshot(self.data_dir, cut, records, self._io, _BG_CHUNK, _BG_PAUSE, extra)
        else:
            _write_snapshot(self.data_dir, cut, records, extra=extra)
        for name in os.listdir(self.data_dir):
            m = _SEGMENT.match(name)
            if m and int(m.group(1)) <= cut:
                os.unlink(os.path.join(self.data_dir, name))
        _fsync_dir(self.data_dir)
        self._snap_seq = cut
        log.info("case store compacted: %d cases in %.2f s", len(records), time.monotonic() - t0)

    def _start_compaction(self) -> None:
        if self._compactor is not None and self._compactor.is_alive():
            return
        try:
            cut, records = self._rotate()
        except OSError:
            log.exception("case log rotation failed; will retry")
            return

        def run() -> None:
            try:
                self._snapshot(cut, records, background=True)
            except Exception:
                log.exception("compaction failed; the log is kept and replayed on open")

        self._compactor = threading.Thread(target=run, name="huqi-store-compact", daemon=True)
        self._compactor.start()

    def _compact_now(self) -> None:
        """Synchronous compaction (writer thread): after purge, on close."""
        if self._compactor is not None:
            self._compactor.join()
        if self._seq == self._snap_seq and self._log_size <= self._log_base:
            return
        cut, records = self._rotate()
        self._snapshot(cut, records)

    async def _after_purge(self) -> None:
        # Purged cases must not linger in the snapshot or the log.
        await self._run_write(self._compact_now)

    def compact(self) -> None:
        """Compact now (blocking).  Not for use while coroutines are writing."""
        self._pool.submit(self._compact_now).result()

    async def _shutdown(self) -> None:
        try:
            if self._compact_on_close:
                await self._run_write(self._compact_now)
            elif self._compactor is not None:
                await self._run_write(self._compactor.join)
        finally:
            self._pool.shutdown(wait=True)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._dirlock.release()
            log.info("case store closed")

    def _ping(self) -> None:
        if self._broken:
            raise StoreError(self._broken)
        try:
            st = os.fstat(self._fd)
            if not os.path.isdir(self.data_dir):
                raise FileNotFoundError(self.data_dir)
        except (OSError, TypeError) as exc:
            raise StoreError(f"the case log is unavailable: {getattr(exc, 'strerror', None) or exc}") from None
        if st.st_nlink == 0:
            raise StoreError("the case log was deleted; restart huqi")

    # -- introspection -----------------------------------------------------

    def __len__(self) -> int:
        return len(self._docs)

    @property
    def log_entries(self) -> int:
        """Log entries written since the last snapshot (for tests, metrics)."""
        return self._log_entries
