"""An exclusive lock on a run folder, held for the life of the process that trains in it.

Two trainers writing one run folder corrupt it (one's checkpoint prune deletes
the other's temporaries, one rewrites the metrics file the other has open), so
every process that writes a run takes ``RUN/.lock`` first with ``flock``. The
kernel releases the lock when the process exits, however it exits (SIGKILL
included), so a stale lock never blocks a resume. The file itself stays and
says who holds it (pid, host, start time, command), so that a refused second
process can name the holder.

NOTE: ``flock`` is reliable on local filesystems; on NFS it depends on the
server. A multi-machine run takes the lock on its rank-0 machine only.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from pixelzoo.errors import RunLocked, WriteError

LOCK_NAME = ".lock"


class RunLock:
    """``with RunLock(run_dir):`` or :meth:`acquire` / :meth:`release`."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise :class:`RunLocked` naming the process that holds it."""
        if self._fd is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise WriteError(f"cannot create the lock file {self.path} ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = holder_of(self.path)
            os.close(fd)
            raise RunLocked(
                f"run folder {self.path.parent} is in use by another process ({holder}); "
                "wait for it to finish or stop it first"
            ) from None
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)[:300],
        }
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder_of(path: Path) -> str:
    """Who holds the lock at ``path``, in words (as written by its holder)."""
    try:
        info = json.loads(Path(path).read_text())
        return f"pid {info['pid']} on {info['host']}, since {info['since']}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
