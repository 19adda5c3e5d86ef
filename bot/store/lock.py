"""One huqi process per data directory.

Two processes appending to the same log would interleave and lose writes, so
the store takes an exclusive, non-blocking ``fcntl.flock`` on
``<data_dir>/huqi.lock`` and writes its pid there (for the error message).
The kernel releases the lock when the process dies, however it dies, so a
crash never leaves a stale lock behind.  ``flock`` locks belong to the open
file, so a second open in the *same* process is refused too.
"""

from __future__ import annotations

import errno
import fcntl
import os
from typing import Optional

__all__ = ["StoreLocked", "DirLock", "LOCK_NAME"]

LOCK_NAME = "huqi.lock"


class StoreLocked(RuntimeError):
    """The data directory is in use by another huqi process."""

    def __init__(self, data_dir: str, pid: Optional[int]):
        self.data_dir = data_dir
        self.pid = pid
        from bot import texts
        who = f"pid {pid}" if pid else texts.text("pid_unknown")
        super().__init__(texts.text("store_locked_by", data_dir=data_dir, who=who))


class DirLock:
    """Exclusive lock on a data directory; ``release()`` or process exit frees it."""

    def __init__(self, data_dir: str):
        self.data_dir = os.path.abspath(data_dir)
        self.path = os.path.join(self.data_dir, LOCK_NAME)
        self._fd: Optional[int] = None

    def acquire(self) -> "DirLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                raise StoreLocked(self.data_dir, _read_pid(fd)) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Leave the file in place (deleting it would race with a process
            # that has just opened it); an empty pid means "not held".
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> Optional[int]:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
