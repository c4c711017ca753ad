"""Reading a file someone named (a flag, an environment variable, a config): regular files only, bounded.

``open()`` on a FIFO blocks until a writer appears, past every deadline; reading a device such
as /dev/zero never ends; and a huge file exhausts memory. So a user-named file is ``stat``-ed
first (a device is refused without being opened: opening some has side effects), then opened
with ``O_NONBLOCK`` (a FIFO swapped in meanwhile opens at once instead of blocking) and checked
again with ``fstat`` on the descriptor actually read. Only a regular file of bounded size is read.

Refusals are ``OSError`` subclasses with a ``strerror`` a person can read, so every caller that
already reports ``exc.strerror`` for a missing file reports these the same way.
"""

from __future__ import annotations

import errno
import os
import stat

# Bounds for the files amlprobe reads. Real ones are far smaller; these only stop a runaway read.
MAX_CONFIG_BYTES = 1 << 20  # --config TOML, config.json, resolv.conf, /etc/environment
MAX_HOSTS_BYTES = 16 << 20  # hosts files can carry large block lists
MAX_CA_BUNDLE_BYTES = 16 << 20  # a system bundle is ~200 KiB
MAX_CATALOG_BYTES = 4 << 20
MAX_REPORT_BYTES = 256 << 20  # amlprobe diff OLD NEW


class NotRegularFile(OSError):
    """The path names a FIFO, a device, a socket or a directory: refused, never read or replaced."""


class FileTooLarge(OSError):
    """The file is larger than the bound its reader allows."""


def file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def not_regular(path: str | os.PathLike[str], mode: int) -> NotRegularFile:
    if stat.S_ISDIR(mode):  # worded as the system words it
        return NotRegularFile(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    return NotRegularFile(errno.EINVAL, f"not a regular file ({file_kind(mode)})", os.fspath(path))


def open_regular(path: str | os.PathLike[str], flags: int = os.O_RDONLY, perm: int = 0o644) -> int:
    """A descriptor on ``path`` if (and only if) it is a regular file; never blocks on a FIFO.

    ``flags`` may add O_WRONLY/O_RDWR, O_APPEND, O_CREAT. Raises OSError (NotRegularFile).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if not flags & os.O_CREAT:
            raise
        if os.path.islink(path):
            # O_CREAT would create the link's target, wherever it points (a link planted in /tmp).
            raise NotRegularFile(errno.ENOENT, "a symbolic link to nothing", os.fspath(path)) from None
    else:
        if not stat.S_ISREG(mode):
            raise not_regular(path, mode)
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, perm)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise not_regular(path, mode)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """The whole content of the regular file ``path``, at most ``limit`` bytes. Raises OSError."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise FileTooLarge(errno.EFBIG, f"larger than {_size(limit)}", os.fspath(path))
        chunks: list[bytes] = []
        total = 0
        # Read to EOF rather than trust st_size (procfs reports 0), but never past the bound.
        while chunk := os.read(fd, min(1 << 20, limit + 1 - total) or 1):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise FileTooLarge(errno.EFBIG, f"larger than {_size(limit)}", os.fspath(path))
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike[str], limit: int) -> str:
    """``read_regular`` decoded as UTF-8, undecodable bytes replaced (for system files such as hosts)."""
    return read_regular(path, limit).decode("utf-8", errors="replace")


def _size(limit: int) -> str:
    if limit >= 1 << 20 and limit % (1 << 20) == 0:
        return f"{limit >> 20} MiB"
    if limit >= 1 << 10 and limit % (1 << 10) == 0:
        return f"{limit >> 10} KiB"
    return f"{limit} bytes"
