"""The audit trail's anchor file: the chain's head (entry count and last hash) kept outside the
database, in the data directory, so that deleting the newest entries — which leaves a shorter
chain that is itself intact — shows as entries missing.

Every process that writes audit entries raises the anchor after it commits them. The file only
ever moves forward: a writer replaces it only when its count is higher than the one there, under
an exclusive lock on a lock file beside it (several server processes and the CLI may share the
data directory). It is written after the commit, not under the database's audit lock before it:
a transaction can still fail or roll back after its entries are written, and an anchor ahead of
the chain would report a truncation that never happened. A crash between commit and anchor leaves
the anchor one write behind, which the next write repairs."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from server.domain.audit_chain import Anchor


class AnchorUnreadable(ValueError):
    """The anchor file exists but cannot be read as an anchor; the message says why."""


def read_anchor(path: Path) -> Anchor | None:
    """The anchor in the file, or None when there is no file; AnchorUnreadable otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise AnchorUnreadable(f"{path} cannot be read: {reason}") from None
    try:
        return Anchor.parse(text)
    except ValueError as error:
        raise AnchorUnreadable(f"{path} is not an anchor: {error}") from None


def raise_anchor(path: Path, anchor: Anchor) -> bool:
    """Replace the anchor file with this anchor if its count is higher than the file's (True
    when written). The file is replaced atomically (a temporary file, synced, then renamed),
    mode 0600. An unreadable file is left alone for `hetang audit verify` to report
    (AnchorUnreadable); OSError when the directory cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_anchor(path)
        if current is not None and current.count >= anchor.count:
            return False
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(handle, anchor.as_text().encode("utf-8"))
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
        return True
    finally:
        os.close(lock)  # releases the lock
