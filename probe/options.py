"""The options of the commands that probe (``check``, ``bundle``), and how they become ProbeSettings.

Bad input is a UsageError: one line on stderr, exit code 3.
"""

from __future__ import annotations

import argparse
import math
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe.defaults import DEFAULT_TIMEOUT
from probe.errors import UsageError
from probe.formats import add_format_argument
from probe.monitoring import add_monitoring_arguments
from probe.sanitize import printable

if TYPE_CHECKING:
    from probe.settings import ProbeSettings

DEFAULT_DEADLINE = 60.0
# A day: a longer timeout or deadline is a mistake, and asyncio and the kernel take no timeout beyond range.
MAX_SECONDS = 86400.0


def parse_dns_server(text: str) -> str:
    """Accept ``ip``, ``ip:port`` or ``[ipv6]:port``; return it normalised."""
    from probe.system import parse_server  # noqa: PLC0415 - per command (start-up: ipaddress)

    try:
        return str(parse_server(text))
    except ValueError:
        raise UsageError(f"--dns-server {text!r}: expected an IP address, ip:port or [ipv6]:port") from None


def seconds(text: str) -> float:
    """A duration in seconds: a finite number greater than zero (``nan``, ``inf``, ``0`` and ``-1`` are not)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive and finite (a number of seconds)")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_SECONDS:g} seconds (a day)")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


@dataclass(frozen=True)
class EnvOption:
    """An option a variable sets when the command line does not (flag > environment > default)."""

    dest: str
    variable: str
    convert: Callable[[str], Any]
    default: Any = None


# The deployed check's settings (deploy/amlprobe-run reads them from /etc/amlprobe/amlprobe.env)
# work the same for a check run by hand. The workspace inputs' AMLPROBE_* variables are the
# knowledge layer's (checks.sources).
ENV_OPTIONS = (
    EnvOption("timeout", "AMLPROBE_TIMEOUT", seconds, DEFAULT_TIMEOUT),
    EnvOption("deadline", "AMLPROBE_DEADLINE", seconds, DEFAULT_DEADLINE),
    EnvOption("concurrency", "AMLPROBE_CONCURRENCY", positive_int),
    EnvOption("textfile_dir", "AMLPROBE_TEXTFILE_DIR", str),
)


def apply_environment(args: argparse.Namespace, env: Mapping[str, str]) -> None:
    """Fill each ENV_OPTIONS option the command line left unset from its variable, else its default.

    An empty variable counts as unset; a bad value is a UsageError naming the variable."""
    for option in ENV_OPTIONS:
        if not hasattr(args, option.dest) or getattr(args, option.dest) is not None:
            continue
        text = env.get(option.variable, "").strip()
        value = option.default
        if text:
            try:
                value = option.convert(text)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise UsageError(f"{option.variable}={printable(text, 100)}: {exc}") from None
        setattr(args, option.dest, value)


def _env_help(dest: str) -> str:
    option = next(o for o in ENV_OPTIONS if o.dest == dest)
    return f"env {option.variable}"


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """Every option of ``check``: what to probe, how to print it, where to publish it."""
    add_probe_arguments(p)
    add_output_arguments(p)
    add_monitoring_arguments(p)


def add_probe_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="URL",
        help="probe this target: tls://host:443, tcp://host:8787, udp://host:5831, smb://host, "
        "wss://host/path, https://host/path, dns://name (repeatable)",
    )
    p.add_argument(
        "--targets",
        metavar="FILE",
        help="also probe the targets listed in FILE, one URL per line (blank lines and lines starting with # ignored)",
    )
    p.add_argument(
        "--dns-server",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="ask this DNS server instead of the system resolver (repeatable)",
    )
    p.add_argument(
        "--timeout",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help=f"per-probe timeout ({_env_help('timeout')}; default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--deadline",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help=f"whole-run deadline; unfinished checks are reported as such ({_env_help('deadline')}; "
        f"default {DEFAULT_DEADLINE:g})",
    )
    p.add_argument(
        "--concurrency",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"probes at once ({_env_help('concurrency')}; default: one per free file descriptor, once the soft "
        "limit is raised to the hard one)",
    )
    p.add_argument("--ca-bundle", metavar="FILE", help="verify TLS against the PEM certificates in FILE")
    p.add_argument("--proxy", metavar="URL", help="HTTP proxy for TLS/HTTP/websocket probes (wins over HTTPS_PROXY)")
    p.add_argument(
        "--no-env",
        action="store_true",
        help="ignore HTTP(S)_PROXY, NO_PROXY, SSL_CERT_FILE and REQUESTS_CA_BUNDLE",
    )


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    add_format_argument(p)
    p.add_argument("--output", metavar="FILE", help="write the report here (atomically) instead of stdout")
    add_verbose_argument(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on the terminal")


def add_verbose_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="the table lists every check (default: what failed or warned; the rest as counts per group)",
    )


def settings_from_args(args: argparse.Namespace) -> ProbeSettings:
    """The probes' settings; first fills the options the command line left unset from the environment
    (``apply_environment``), so every later reader of ``args`` sees the values in force."""
    from probe.settings import ProbeSettings, SystemPaths  # noqa: PLC0415 - per command (start-up)

    apply_environment(args, os.environ)
    servers = [parse_dns_server(s) for s in args.dns_server]
    if args.ca_bundle and not os.path.isfile(args.ca_bundle):
        raise UsageError(f"--ca-bundle {args.ca_bundle!r}: no such file")
    settings = ProbeSettings(
        timeout=args.timeout,
        dns_servers=servers,
        ca_bundle=args.ca_bundle,
        proxy=args.proxy,
        trust_env=not args.no_env,
        env=dict(os.environ),
        paths=SystemPaths.from_env(os.environ),
        # An explicit server means "ask that server"; otherwise resolve as the system would.
        use_hosts_file=not servers,
    )
    from probe.transport.proxyenv import check_proxy_settings  # noqa: PLC0415 - per command (start-up)

    check_trust_files(settings)
    if settings.ca_bundle:
        check_pem_bundle(settings.ca_bundle)
    check_proxy_settings(settings)
    return settings


def check_pem_bundle(path: str) -> None:
    """Refuse a --ca-bundle that holds no PEM certificate: every TLS check would fail "untrusted" for
    a mistake of input (a DER file, a key, the wrong file), a false diagnosis."""
    import ssl  # noqa: PLC0415 - per command (start-up: ssl loads OpenSSL)

    from probe.transport.tlsconfig import read_pem_certificates  # noqa: PLC0415 - likewise

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    shown = printable(path, 200)
    try:
        # As the probes will read it (a bounded read of a regular file, never OpenSSL's own open).
        ctx.load_verify_locations(cadata=read_pem_certificates(path))
    except ssl.SSLError as exc:
        why = getattr(exc, "reason", None) or exc.strerror or str(exc)
        raise UsageError(f"--ca-bundle '{shown}': not PEM certificates ({printable(str(why), 200)})") from None
    except OSError as exc:
        raise UsageError(f"--ca-bundle '{shown}': {exc.strerror or exc}") from None
    if not ctx.cert_store_stats().get("x509"):
        raise UsageError(f"--ca-bundle '{shown}': no certificate in it (only revocation lists)")


def check_trust_files(settings: ProbeSettings) -> None:
    """Refuse a CA bundle that is not a regular file of bounded size (OpenSSL would block on a FIFO)."""
    from probe.files import MAX_CA_BUNDLE_BYTES, file_kind  # noqa: PLC0415 - per command (start-up)
    from probe.transport.tlsconfig import ca_bundle_in_use  # noqa: PLC0415 - per command (start-up)

    bundle = ca_bundle_in_use(settings)
    if bundle is None:
        # The default store: OpenSSL itself reads SSL_CERT_FILE from the process environment,
        # --no-env or not.
        named = [("SSL_CERT_FILE", os.environ.get("SSL_CERT_FILE"))]
    elif bundle == settings.ca_bundle:
        named = [("--ca-bundle", bundle)]
    else:
        named = [(var, bundle) for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE") if settings.env.get(var) == bundle]
    for label, path in named:
        if not path:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue  # a missing bundle fails each TLS check with its reason
        shown = printable(path, 200)
        if stat.S_ISDIR(st.st_mode) and label != "--ca-bundle":
            continue  # a certificate directory (OpenSSL's capath)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{label} '{shown}': not a regular file ({file_kind(st.st_mode)})")
        if st.st_size > MAX_CA_BUNDLE_BYTES:
            raise UsageError(f"{label} '{shown}': larger than {MAX_CA_BUNDLE_BYTES >> 20} MiB")


def read_targets(path: str) -> list[str]:
    """Targets listed in a file, one per line; thousands of --target options would make argparse crawl."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--targets '{printable(path, 200)}': {getattr(exc, 'strerror', None) or exc}") from None
    return [t for t in (line.strip() for line in lines) if t and not t.startswith("#")]
