"""Write files so that a reader (cron, node_exporter, a support engineer) never sees a partial one.

The new content goes to a temporary file beside the target, created with ``O_EXCL`` (never
someone else's file, never through a symlink) and the final mode, then is renamed over the
target. Whatever goes wrong (a full disk, a read-only file system, a signal), the temporary file
is removed and the previous file stays exactly as it was.

Only regular files are replaced. ``--output /dev/null`` run as root would otherwise swap the
machine's /dev/null for a regular file, so a target that exists and is not a regular file is
refused. A symlink is followed: its target is checked the same way and replaced in place, so the
link keeps working. A dangling symlink is refused too (it could point anywhere, e.g. planted in
/tmp by another user).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from probe.files import NotRegularFile, not_regular

# Temporary files being written right now: a second signal (probe.interrupt) removes them
# before the process exits at once.
_LIVE: set[str] = set()


class WriteFailed(OSError):
    """The file could not be written; the previous one, if any, is unchanged."""


def discard_temporaries() -> None:
    """Remove every temporary file still being written (called on an immediate exit)."""
    for tmp in list(_LIVE):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _LIVE.discard(tmp)


def resolve_target(path: str | os.PathLike[str]) -> tuple[Path, os.stat_result | None]:
    """The file a write to ``path`` replaces (symlinks followed) and its stat, None if it does not exist yet.

    Raises NotRegularFile for anything but a regular file, and for a dangling symlink.
    """
    given = Path(path)
    try:
        is_link = stat.S_ISLNK(os.lstat(given).st_mode)
    except FileNotFoundError:
        is_link = False
    target = Path(os.path.realpath(given)) if is_link else given
    try:
        st = os.stat(target)
    except FileNotFoundError:
        if is_link:
            raise NotRegularFile(errno.ENOENT, "a symbolic link to nothing", os.fspath(given)) from None
        return target, None
    if not stat.S_ISREG(st.st_mode):
        raise not_regular(given, st.st_mode)
    return target, st


def check_writable_target(path: str | os.PathLike[str]) -> None:
    """Refuse, before any work, a target ``write_atomic`` would refuse. Raises OSError."""
    target, _ = resolve_target(path)
    if not os.path.isdir(target.parent or "."):
        raise FileNotFoundError(errno.ENOENT, "its directory does not exist", os.fspath(path))


def _create_temporary(target: Path, mode: int) -> tuple[int, str]:
    directory = target.parent or Path(".")
    while True:
        tmp = os.fspath(directory / f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode & 0o600)
        except FileExistsError:
            continue
        _LIVE.add(tmp)
        return fd, tmp


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` in one rename. Raises OSError: NotRegularFile, or WriteFailed.

    The file gets ``mode``, narrowed to the replaced file's mode when there is one: a report a
    user made private stays private.
    """
    target, old = resolve_target(path)
    final_mode = mode if old is None else mode & stat.S_IMODE(old.st_mode)
    payload = data.encode() if isinstance(data, str) else data
    tmp: str | None = None
    try:
        # Created owner-only; the final mode is set on the descriptor once the content is in.
        fd, tmp = _create_temporary(target, mode)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, final_mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        _LIVE.discard(tmp)
        tmp = None
    except OSError as exc:
        if isinstance(exc, NotRegularFile):
            raise
        what = exc.strerror or str(exc)
        kept = "the previous file is unchanged" if old is not None else "nothing was written"
        raise WriteFailed(exc.errno or errno.EIO, f"{what} ({kept})", os.fspath(path)) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            _LIVE.discard(tmp)
    # The rename itself must survive a crash too.
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent or ".", os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
