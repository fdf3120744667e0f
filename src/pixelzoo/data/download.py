"""Find a dataset's files locally, or download them into a cache with checksums.

Resolution order for each file: the folder the user named (``root`` /
``--data-dir``) and nothing else; otherwise the cache folder (``$PIXELZOO_DATA``
or ``~/.cache/pixelzoo``), downloading into it from the canonical source when the
file is absent. A download is written to a temporary name, its MD5 compared with
the published checksum, and only then renamed into place, so a half-downloaded or
corrupt file is never left where a loader would read it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pixelzoo.errors import DataError


@dataclass(frozen=True)
class RemoteFile:
    """A file a dataset needs, in one or more accepted local forms.

    Args:
        names: accepted local file names, in order of preference (e.g. the
            ``.gz`` and the uncompressed form).
        url: canonical download address of ``names[0]``-or-``download_name``.
        md5: published MD5 of the downloaded file.
        download_name: the name the download is saved under, if it differs
            from ``names[0]``.
    """

    names: tuple[str, ...]
    url: str
    md5: str
    download_name: str | None = None


def cache_dir() -> Path:
    return Path(os.environ.get("PIXELZOO_DATA", Path.home() / ".cache" / "pixelzoo"))


def md5sum(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, dest: Path, md5: str, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its MD5.

    Raises:
        DataError: no connection, or the downloaded bytes do not match ``md5``.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    shutil.copyfileobj(response, out)
            except (urllib.error.URLError, OSError, TimeoutError) as e:
                reason = getattr(e, "reason", e)
                raise DataError(
                    f"could not download {dest.name} from {url} ({reason}); put the file "
                    f"{dest.name} in {dest.parent} yourself, or pass --data-dir with a "
                    f"folder that holds it"
                ) from None
        got = md5sum(Path(tmp))
        if got != md5:
            raise DataError(
                f"downloaded {dest.name} from {url} is corrupt (MD5 {got}, expected {md5}); "
                f"nothing was saved"
            )
        os.replace(tmp, dest)
        return dest
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def resolve(dataset: str, file: RemoteFile, root: str | os.PathLike | None) -> Path:
    """Path of a local copy of ``file``, downloading it into the cache if needed."""
    if root is not None:
        root = Path(root)
        for name in file.names:
            if (root / name).is_file():
                return root / name
        raise DataError(
            f"dataset {dataset!r}: {root} has no {' or '.join(file.names)}; download it "
            f"from {file.url} and put it there"
        )
    folder = cache_dir() / dataset
    for name in file.names:
        if (folder / name).is_file():
            return folder / name
    return fetch(file.url, folder / (file.download_name or file.names[0]), file.md5)
