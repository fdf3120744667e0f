"""Files: atomic writes (a temp file in the same folder, fsync, then rename) and JSON reads."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pixelzoo.errors import CheckpointError, InputError, WriteError


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; set it straight back
    os.umask(mask)
    return mask


UMASK = _read_umask()  # read once at import: os.umask is process-wide


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new, never half.

    The file gets the usual permissions (0666 minus the umask), not the 0600 of
    a temporary file. A folder at ``path`` is an :class:`InputError`; a failed
    write (disk full, read-only folder) a :class:`WriteError`, with no
    temporary file left behind.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder; give the name of a file to write")
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.fchmod(fd, 0o666 & ~UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise WriteError(f"could not write {path} ({e.strerror or e})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def read_json(path: str | os.PathLike, error: type[Exception] = CheckpointError):
    """The JSON value in ``path``; ``error`` with one sentence if it is missing, unreadable or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise error(f"{path} is missing") from None
    except IsADirectoryError:
        raise error(f"{path} is a folder, not a JSON file") from None
    except UnicodeDecodeError:
        raise error(f"{path} is corrupt (not UTF-8 text)") from None
    except json.JSONDecodeError:
        raise error(f"{path} is corrupt (not JSON)") from None
    except OSError as e:
        raise error(f"{path} cannot be read ({e.strerror or e})") from None
