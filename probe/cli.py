"""``amlprobe``: the command line. Exit codes follow the monitoring-plugin convention.

0 ok, 1 warning, 2 critical, 3 unknown or bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from probe import __version__
from probe.atomic import write_atomic
from probe.context import DEFAULT_TIMEOUT, ProbeContext, ProbeSettings
from probe.errors import UsageError
from probe.model import CheckResult, Finding, OverallStatus, Report, json_schema, overall_status, summarize
from probe.plugin import PlannedRun, Plugin, load_plugins
from probe.render import render_json, render_table
from probe.resolve import SharedResolver
from probe.runner import default_concurrency, run_checks
from probe.targets import parse_target

EXIT_CODES = {
    OverallStatus.OK: 0,
    OverallStatus.WARNING: 1,
    OverallStatus.CRITICAL: 2,
    OverallStatus.UNKNOWN: 3,
}
EXIT_USAGE = 3
DEFAULT_DEADLINE = 60.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's default exits 2, which means "critical" here
        raise UsageError(message)


def parse_dns_server(text: str) -> str:
    """Accept ``ip``, ``ip:port`` or ``[ipv6]:port``; return it normalised."""
    host, port = text, None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        ip = ipaddress.ip_address(host)
        if port is not None and not 0 < int(port) < 65536:
            raise ValueError
    except ValueError:
        raise UsageError(f"--dns-server {text!r}: expected an IP address, ip:port or [ipv6]:port") from None
    if port is None:
        return str(ip)
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def _positive(kind: type[float] | type[int]) -> Any:
    def conv(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value

    return conv


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
        "--dns-server",
        action="append",
        default=[],
        metavar="IP[:PORT]",
        help="ask this DNS server instead of the system resolver (repeatable)",
    )
    p.add_argument(
        "--timeout",
        type=_positive(float),
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per-probe timeout (default {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--deadline",
        type=_positive(float),
        default=DEFAULT_DEADLINE,
        metavar="SECONDS",
        help=f"whole-run deadline; unfinished checks are reported as such (default {DEFAULT_DEADLINE:g})",
    )
    p.add_argument(
        "--concurrency",
        type=_positive(int),
        default=None,
        metavar="N",
        help=f"probes at once (default {default_concurrency()}, from the file-descriptor limit)",
    )
    p.add_argument("--ca-bundle", metavar="FILE", help="verify TLS against this PEM bundle")
    p.add_argument("--proxy", metavar="URL", help="HTTP proxy for TLS/HTTP/websocket probes (wins over HTTPS_PROXY)")
    p.add_argument(
        "--no-env",
        action="store_true",
        help="ignore HTTP(S)_PROXY, NO_PROXY, SSL_CERT_FILE and REQUESTS_CA_BUNDLE",
    )


def add_output_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=("json", "table", "prometheus"),
        default=None,
        help="output format (default: table on a terminal, else json); prometheus: text exposition format",
    )
    p.add_argument("--output", metavar="FILE", help="write the report here (atomically) instead of stdout")
    p.add_argument("--no-color", action="store_true", help="no colour in table output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line on the terminal")


def add_monitoring_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "monitoring (a failure to publish is one line on stderr and never changes the exit code)"
    )
    g.add_argument(
        "--textfile-dir",
        metavar="DIR",
        help="also write DIR/amlprobe.prom (atomically) for node_exporter's textfile collector",
    )
    g.add_argument(
        "--pushgateway",
        metavar="URL",
        help="also push the metrics to this Prometheus Pushgateway (job amlprobe, instance = host name; "
        "never through HTTP(S)_PROXY)",
    )
    g.add_argument(
        "--history",
        metavar="FILE",
        help="append a one-line summary of the run to FILE and report the checks whose status changed "
        "since the previous line",
    )


def build_parser(plugins: Sequence[Plugin]) -> argparse.ArgumentParser:
    parser = _Parser(prog="amlprobe", description="Connectivity diagnostics for Azure Machine Learning in a VNet.")
    parser.add_argument("--version", action="version", version=f"amlprobe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    check = sub.add_parser("check", help="probe the targets (or the plan) and print a health report")
    add_engine_arguments(check)
    for plugin in plugins:
        plugin.add_check_arguments(check)
    sub.add_parser("schema", help="print the report's JSON Schema")
    for plugin in plugins:
        plugin.add_commands(sub)
    return parser


def settings_from_args(args: argparse.Namespace) -> ProbeSettings:
    servers = [parse_dns_server(s) for s in args.dns_server]
    if args.ca_bundle and not os.path.isfile(args.ca_bundle):
        raise UsageError(f"--ca-bundle {args.ca_bundle!r}: no such file")
    return ProbeSettings(
        timeout=args.timeout,
        dns_servers=servers,
        ca_bundle=args.ca_bundle,
        proxy=args.proxy,
        trust_env=not args.no_env,
        env=dict(os.environ),
        # An explicit server means "ask that server"; otherwise resolve as the system would.
        hosts_file=None if servers else "/etc/hosts",
    )


def base_environment(settings: ProbeSettings, args: argparse.Namespace) -> dict[str, Any]:
    import platform
    import socket

    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "settings": {
            "timeout_s": settings.timeout,
            "deadline_s": args.deadline,
            "concurrency": args.concurrency or default_concurrency(),
            "dns_servers": settings.dns_servers or "system",
            "ca_bundle": settings.ca_bundle,
            "proxy": _redact(settings.proxy) if settings.proxy else None,
        },
    }


def _redact(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:****@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


async def execute(
    planned: PlannedRun,
    settings: ProbeSettings,
    args: argparse.Namespace,
    *,
    on_result: Any = None,
) -> Report:
    """Run a planned set of checks and build the report (interpreted by the plan's ``finish``)."""
    from probe.dns import make_lookup

    ctx = ProbeContext(settings=settings, resolver=SharedResolver(make_lookup(settings)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        outcome = await run_checks(
            planned.specs,
            ctx,
            concurrency=args.concurrency,
            deadline_s=args.deadline,
            stop=stop,
            on_result=on_result,
        )
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
    checks: list[CheckResult] = list(planned.preset) + outcome.results
    findings: list[Finding] = []
    if planned.finish is not None:
        checks, findings = planned.finish(checks)
    incomplete = outcome.interrupted or outcome.deadline_exceeded
    return Report(
        status=overall_status(checks, findings, incomplete=incomplete),
        started_at=outcome.started_at,
        duration_ms=outcome.duration_ms,
        interrupted=outcome.interrupted,
        deadline_exceeded=outcome.deadline_exceeded,
        environment=planned.environment,
        summary=summarize(checks),
        checks=checks,
        findings=findings,
    )


def emit(report: Report, args: argparse.Namespace) -> None:
    fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "json")
    if fmt == "table":
        colour = sys.stdout.isatty() and not args.output and not args.no_color and "NO_COLOR" not in os.environ
        text = render_table(report, colour=colour)
    else:
        text = render_json(report)
    if args.output:
        try:
            write_atomic(args.output, text)
        except OSError as exc:
            raise UsageError(f"--output {args.output!r}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


async def cmd_check(args: argparse.Namespace, plugins: Sequence[Plugin]) -> int:
    settings = settings_from_args(args)
    if args.target:
        specs = [parse_target(t) for t in args.target]
        seen: set[str] = set()
        specs = [s for s in specs if not (s.id in seen or seen.add(s.id))]  # type: ignore[func-returns-value]
        planned = PlannedRun(specs=specs, environment=base_environment(settings, args))
    elif plugins:
        planned = await plugins[0].plan_run(args, settings)
        planned.environment = {**base_environment(settings, args), **planned.environment}
    else:
        raise UsageError("no --target given")
    report = await execute(planned, settings, args)
    emit(report, args)
    return EXIT_CODES[report.status]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        plugins = load_plugins()
        parser = build_parser(plugins)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "schema":
            sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
            return 0
        if args.command == "check":
            return asyncio.run(cmd_check(args, plugins))
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return EXIT_USAGE
        result: int = handler(args)
        return result
    except UsageError as exc:
        print(f"amlprobe: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("amlprobe: interrupted", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_USAGE
