"""File descriptors as the run's budget: raise the soft limit, count what is free, and treat
running out (EMFILE, ENFILE) as back-pressure rather than as a fact about the network.

A probe that cannot get a socket has learned nothing about its target; reporting that as
``tcp_error`` would blame the network for a local limit. Probers raise ``DescriptorsExhausted``
instead, and the runner waits for a descriptor to be released and runs the probe again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

# Out of descriptors: in this process (EMFILE) or in the whole system (ENFILE).
EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE})
# When the hard limit is "unlimited", the kernel still caps the soft one (fs.nr_open).
_NR_OPEN = "/proc/sys/fs/nr_open"


class DescriptorsExhausted(Exception):
    """No file descriptor was available for a socket: wait and retry; never a result.

    Deliberately not an OSError, so no prober's network-error handling can classify it.
    """


def exhausted(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in EXHAUSTED


def check(exc: BaseException) -> None:
    """Raise DescriptorsExhausted (from ``exc``) when ``exc`` says the descriptors ran out."""
    if exhausted(exc):
        raise DescriptorsExhausted(str(exc)) from exc


def limits() -> tuple[int, int]:
    """(soft, hard) RLIMIT_NOFILE; "unlimited" reads as a large number."""
    if resource is None:
        return (512, 512)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    big = 1 << 20
    return (big if soft == resource.RLIM_INFINITY else soft, big if hard == resource.RLIM_INFINITY else hard)


def raise_soft_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit, as servers do at start; return the soft limit now."""
    if resource is None:
        return limits()[0]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open(_NR_OPEN) as fh:
                target = int(fh.read())
        except (OSError, ValueError):
            target = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return limits()[0]


def open_count() -> int:
    """Descriptors this process has open now (an estimate off Linux)."""
    if sys.platform.startswith("linux"):
        try:
            # listdir's own descriptor is in the listing.
            return len(os.listdir("/proc/self/fd")) - 1
        except OSError:
            pass
    return 16


def free() -> int:
    """Descriptors this process may still open."""
    return max(0, limits()[0] - open_count())
