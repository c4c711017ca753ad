"""Move this process into a private network namespace, from which no packet can leave.

Done in-process (unshare(2) through libc) rather than by re-executing under unshare(1): the
lab pays for one interpreter start, not two. Without root, a user namespace maps us to root
inside so we may configure the namespace's network. Nothing is named or mounted, so nothing is
left behind: the namespace dies with the process.
"""

from __future__ import annotations

import ctypes
import os
import subprocess

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000


class NamespaceUnavailable(Exception):
    """The lab's private network cannot be made: neither unprivileged user namespaces nor root are
    available, or ``ip`` is missing or refuses the lab's configuration."""


def _unshare(flags: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) == 0:
        return 0
    return ctypes.get_errno()


def enter_private_network() -> str:
    """Unshare the network namespace; return "user+net" or "net". Must run before any thread starts."""
    uid, gid = os.getuid(), os.getgid()
    err = _unshare(CLONE_NEWUSER | CLONE_NEWNET)
    if err == 0:
        try:
            with open("/proc/self/setgroups", "w") as fh:
                fh.write("deny")
            with open("/proc/self/uid_map", "w") as fh:
                fh.write(f"0 {uid} 1")
            with open("/proc/self/gid_map", "w") as fh:
                fh.write(f"0 {gid} 1")
        except OSError as exc:
            raise NamespaceUnavailable(f"cannot map the user namespace: {exc.strerror}") from None
        return "user+net"
    if uid == 0 and _unshare(CLONE_NEWNET) == 0:
        return "net"
    raise NamespaceUnavailable(
        "the lab needs unprivileged user namespaces or root to create a private network namespace "
        f"(unshare: {os.strerror(err)})"
    )


def ip_batch(commands: list[str]) -> None:
    """Apply ``ip`` commands in one process; raise NamespaceUnavailable naming the failed line."""
    try:
        proc = subprocess.run(
            ["ip", "-batch", "-"],
            input="\n".join(commands) + "\n",
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except FileNotFoundError:
        raise NamespaceUnavailable("the lab needs the 'ip' command (Debian/Ubuntu package iproute2)") from None
    if proc.returncode != 0:
        said = "; ".join(line.strip() for line in proc.stderr.splitlines() if line.strip())
        raise NamespaceUnavailable(f"configuring the lab network failed: {said or f'ip exited {proc.returncode}'}")
