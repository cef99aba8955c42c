"""Writing this computer's files safely: whole or not at all."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_atomically(path: Path, data: bytes | str) -> None:
    """Write ``data`` (text is UTF-8) to ``path`` through a temporary file beside it, renamed
    over it at the end: a reader sees the old file or the new one, never half of one. The
    temporary file is created readable by its owner only (mode 0600) and removed on failure;
    the ``OSError`` is the caller's to explain."""
    import tempfile  # here: writing is rare, and tempfile is not cheap to import

    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path())
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except BaseException:  # a half-written copy must not pile up next to the file
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
