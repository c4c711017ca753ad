"""``amlprobe``: the command line. Exit codes follow the monitoring-plugin convention.

0 ok, 1 warning, 2 critical, 3 unknown or bad input (one line on stderr, never a traceback).
SIGINT, SIGTERM and SIGHUP end a run with a report marked interrupted and exit 3 (probe.interrupt).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from probe import __version__
from probe.defaults import DEFAULT_TIMEOUT
from probe.errors import UsageError
from probe.plugin import load_plugins
from probe.sanitize import printable

# Everything else is imported by the command that needs it: `--version`, `plan` and `schema`
# must not pay for the engine (pydantic models, asyncio, aiohttp). See bench/bench_startup.py.
if TYPE_CHECKING:
    from probe.model import CheckResult, Report
    from probe.plugin import PlannedRun, Plugin
    from probe.settings import ProbeSettings

# Keyed by OverallStatus values.
EXIT_CODES = {
    "ok": 0,
    "warning": 1,
    "critical": 2,
    "unknown": 3,
}
EXIT_USAGE = 3
DEFAULT_DEADLINE = 60.0
# node_exporter's textfile collector reads *.prom; write_atomic's temporary ends in .tmp.
TEXTFILE_NAME = "amlprobe.prom"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's default exits 2, which means "critical" here
        raise UsageError(message)


def parse_dns_server(text: str) -> str:
    """Accept ``ip``, ``ip:port`` or ``[ipv6]:port``; return it normalised."""
    from probe.system import parse_server  # noqa: PLC0415 - per command (start-up)

    try:
        return str(parse_server(text))
    except ValueError:
        raise UsageError(f"--dns-server {text!r}: expected an IP address, ip:port or [ipv6]:port") from None


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
        help="probes at once (default: one per free file descriptor, once the soft limit is raised to the hard one)",
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
    g = p.add_argument_group("monitoring (a failure to publish is one line on stderr and never changes the exit code)")
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
    bundle = sub.add_parser(
        "bundle",
        help="run a check, then pack the report and this machine's network facts, redacted, for a support ticket",
        description="Runs exactly like `check` (same options, same report and exit code), then writes a "
        "tar.gz with the report, the plan, resolv.conf, routes, listening sockets and versions. Secrets "
        "(URL passwords, SAS signatures, keys, tokens) are redacted in every file; REDACTIONS.txt says "
        "where. Exit code: the check's, or 3 if the bundle could not be written.",
    )
    add_engine_arguments(bundle)
    for plugin in plugins:
        plugin.add_check_arguments(bundle)
    bundle.add_argument(
        "--out",
        metavar="FILE.tar.gz",
        help="where to write the bundle (default amlprobe-bundle-<host>-<UTC time>.tar.gz here)",
    )
    diff = sub.add_parser(
        "diff",
        help="compare two JSON reports",
        description="Print the checks whose status or reason changed, the findings added or removed and "
        "the overall status change. Exit 0 when nothing changed, 1 when something did, 3 for a bad file.",
    )
    diff.add_argument("old", metavar="OLD", help="the earlier JSON report")
    diff.add_argument("new", metavar="NEW", help="the later JSON report")
    diff.add_argument(
        "--format", choices=("json", "table"), default=None, help="default: table on a terminal, else json"
    )
    diff.set_defaults(handler=cmd_diff)
    sub.add_parser("schema", help="print the report's JSON Schema")
    for plugin in plugins:
        plugin.add_commands(sub)
    return parser


def settings_from_args(args: argparse.Namespace) -> ProbeSettings:
    from probe.settings import ProbeSettings, SystemPaths  # noqa: PLC0415 - per command (start-up)

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
    check_proxy_settings(settings)
    return settings


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


def base_environment(settings: ProbeSettings, args: argparse.Namespace) -> dict[str, Any]:
    import platform  # noqa: PLC0415 - per command (start-up)
    import socket  # noqa: PLC0415 - per command (start-up)

    from probe.redact import redact_url  # noqa: PLC0415 - per command (start-up)
    from probe.runner import default_concurrency  # noqa: PLC0415 - per command (start-up)

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
            "proxy": redact_url(settings.proxy) if settings.proxy else None,
        },
    }


async def execute(
    planned: PlannedRun,
    settings: ProbeSettings,
    args: argparse.Namespace,
    *,
    on_result: Any = None,
) -> Report:
    """Run a planned set of checks and build the report (interpreted by the plan's ``finish``)."""
    import asyncio  # noqa: PLC0415 - per command (start-up)

    from probe.interrupt import INTERRUPT  # noqa: PLC0415 - per command (start-up)
    from probe.model import Finding, OverallStatus, Report, overall_status, summarize  # noqa: PLC0415 - per command (start-up)
    from probe.runner import probe_context, run_checks  # noqa: PLC0415 - per command (start-up)

    ctx = probe_context(settings)
    stop = asyncio.Event()
    if INTERRUPT.requested:  # a signal while the run was being planned
        stop.set()
    with INTERRUPT.on_loop(asyncio.get_running_loop(), stop.set):
        outcome = await run_checks(
            planned.specs,
            ctx,
            concurrency=args.concurrency,
            deadline_s=args.deadline,
            stop=stop,
            on_result=on_result,
        )
    checks: list[CheckResult] = list(planned.preset) + outcome.results
    findings: list[Finding] = []
    if planned.finish is not None:
        checks, findings = planned.finish(checks)
    interrupted = outcome.interrupted or INTERRUPT.requested
    incomplete = interrupted or outcome.deadline_exceeded
    return Report(
        # An interrupted run decided nothing: unknown (exit 3), whatever it saw before the signal.
        status=OverallStatus.UNKNOWN if interrupted else overall_status(checks, findings, incomplete=incomplete),
        started_at=outcome.started_at,
        duration_ms=outcome.duration_ms,
        interrupted=interrupted,
        deadline_exceeded=outcome.deadline_exceeded,
        environment=planned.environment,
        summary=summarize(checks),
        checks=checks,
        findings=findings,
    )


def emit(report: Report, args: argparse.Namespace) -> None:
    from probe.atomic import write_atomic  # noqa: PLC0415 - per command (start-up)
    from probe.interrupt import INTERRUPT  # noqa: PLC0415 - per command (start-up)
    from probe.model import OverallStatus  # noqa: PLC0415 - per command (start-up)
    from probe.prometheus import render_prometheus  # noqa: PLC0415 - per command (start-up)
    from probe.render import render_json, render_table  # noqa: PLC0415 - per command (start-up)

    if INTERRUPT.requested and not report.interrupted:  # a signal after the probes had finished
        report.interrupted, report.status = True, OverallStatus.UNKNOWN
    fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "json")
    if fmt == "table":
        colour = sys.stdout.isatty() and not args.output and not args.no_color and "NO_COLOR" not in os.environ
        text = render_table(report, colour=colour)
    elif fmt == "prometheus":
        text = render_prometheus(report)
    else:
        text = render_json(report)
    if args.output:
        try:
            write_atomic(args.output, text)
        except OSError as exc:
            raise UsageError(f"--output '{printable(args.output, 200)}': {exc.strerror or exc}") from None
    else:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except OSError as exc:
            # A closed pipe or a hung-up terminal (SIGHUP): nowhere to write. Keep the interpreter
            # from failing again on its final flush; the exit code still tells.
            _detach_stdout()
            if isinstance(exc, BrokenPipeError):
                raise
            raise UsageError(f"cannot write the report to standard output: {exc.strerror or exc}") from None


def _detach_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class Progress:
    """One self-overwriting line on a terminal's stderr: "probing 37/52 ... 2 failed"."""

    INTERVAL = 0.1

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream = total, stream
        self.done = self.failed = 0
        self.shown = False
        self._last = 0.0
        utf8 = (getattr(stream, "encoding", "") or "").lower().replace("-", "") == "utf8"
        self._dots = "\u2026" if utf8 else "..."

    def update(self, result: CheckResult) -> None:
        self.done += 1
        if result.status.value == "fail":
            self.failed += 1
        now = time.monotonic()
        # Hundreds of checks can finish within milliseconds: redraw at most ten times a second.
        if now - self._last < self.INTERVAL and self.done < self.total:
            return
        self._last = now
        line = f"probing {self.done}/{self.total}"
        if self.failed:
            line += f" {self._dots} {self.failed} failed"
        self._write(f"\r\x1b[2K{line}")
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self._write("\r\x1b[2K")
            self.shown = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except OSError:
            pass


def _progress(args: argparse.Namespace, total: int) -> Progress | None:
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return None
    return Progress(total, sys.stderr)


def check_output_target(option: str, path: str) -> None:
    """Refuse, before probing, a file the report could not replace (a device, a FIFO, no directory)."""
    from probe.atomic import check_writable_target  # noqa: PLC0415 - per command (start-up)

    try:
        check_writable_target(path)
    except OSError as exc:
        raise UsageError(f"{option} '{printable(path, 200)}': {exc.strerror or exc}") from None


def check_monitoring_args(args: argparse.Namespace) -> None:
    """Refuse unusable publishing options before probing, not after a minute of work."""
    if getattr(args, "output", None):
        check_output_target("--output", args.output)
    textfile_dir = getattr(args, "textfile_dir", None)
    if textfile_dir is not None:
        if not os.path.isdir(textfile_dir):
            raise UsageError(f"--textfile-dir {textfile_dir!r}: no such directory")
        check_output_target("--textfile-dir", os.path.join(textfile_dir, TEXTFILE_NAME))
    history = getattr(args, "history", None)
    if history is not None:
        if os.path.isdir(history):
            raise UsageError(f"--history {history!r}: is a directory")
        _check_parent_dir("--history", history)
        check_output_target("--history", history)  # a regular file, or nothing yet; never a dangling link
    url = getattr(args, "pushgateway", None)
    if url is not None:
        from urllib.parse import urlsplit  # noqa: PLC0415 - per command (start-up)

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise UsageError(f"--pushgateway {url!r}: expected http(s)://host:port")


def _check_parent_dir(option: str, path: str) -> None:
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise UsageError(f"{option} {path!r}: its directory does not exist")


def _warn(message: str) -> None:
    with contextlib.suppress(OSError):
        print(f"amlprobe: warning: {printable(message, 2000)}", file=sys.stderr)


def read_history(report: Report, args: argparse.Namespace) -> bool:
    """Fill ``report.changes`` from the history, before the report is written; False: skip the history.

    The lock wait is bounded: a history locked past it is skipped, with a warning in the report.
    """
    from probe.history import changes_since, read_previous  # noqa: PLC0415 - per command (start-up)

    history = getattr(args, "history", None)
    if not history:
        return False
    try:
        report.changes = changes_since(read_previous(history), report)
    except OSError as exc:
        report.warnings.append(f"--history {history}: {exc.strerror or exc}: the history was skipped")
        return False
    return True


async def publish(report: Report, args: argparse.Namespace, *, append_history: bool) -> None:
    """After the report: history line, textfile and Pushgateway. Failures warn, never change the exit code."""
    import socket  # noqa: PLC0415 - per command (start-up)

    from probe.atomic import write_atomic  # noqa: PLC0415 - per command (start-up)
    from probe.history import append_entry, run_entry  # noqa: PLC0415 - per command (start-up)
    from probe.prometheus import PushError, push, render_prometheus  # noqa: PLC0415 - per command (start-up)

    history = getattr(args, "history", None)
    if history and append_history:
        try:
            append_entry(history, run_entry(report))
        except OSError as exc:
            _warn(f"--history {history!r}: {exc.strerror or exc}")
    textfile_dir = getattr(args, "textfile_dir", None)
    url = getattr(args, "pushgateway", None)
    if not textfile_dir and not url:
        return
    metrics = render_prometheus(report)
    if textfile_dir:
        path = os.path.join(textfile_dir, TEXTFILE_NAME)
        try:
            write_atomic(path, metrics)
        except OSError as exc:
            _warn(f"--textfile-dir: {path}: {exc.strerror or exc}")
    if url:
        try:
            await push(url, metrics, instance=socket.gethostname() or "unknown")
        except PushError as exc:
            _warn(f"--pushgateway: {exc}")


def read_targets(path: str) -> list[str]:
    """Targets listed in a file, one per line; thousands of --target options would make argparse crawl."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--targets '{printable(path, 200)}': {getattr(exc, 'strerror', None) or exc}") from None
    return [t for t in (line.strip() for line in lines) if t and not t.startswith("#")]


async def plan_check(args: argparse.Namespace, plugins: Sequence[Plugin], settings: ProbeSettings) -> PlannedRun:
    from probe.plugin import PlannedRun  # noqa: PLC0415 - per command (start-up)
    from probe.targets import parse_target  # noqa: PLC0415 - per command (start-up)

    texts = list(args.target) + (read_targets(args.targets) if getattr(args, "targets", None) else [])
    if texts:
        specs = [parse_target(t) for t in texts]
        seen: set[str] = set()
        specs = [s for s in specs if not (s.id in seen or seen.add(s.id))]  # type: ignore[func-returns-value]
        return PlannedRun(specs=specs, environment=base_environment(settings, args))
    if plugins:
        planned = await plugins[0].plan_run(args, settings)
        # Merge in place: the plugin's finish() holds this dict and records its judgement in it.
        merged = {**base_environment(settings, args), **planned.environment}
        planned.environment.clear()
        planned.environment.update(merged)
        return planned
    raise UsageError("no --target or --targets given")


async def run_check(
    args: argparse.Namespace, plugins: Sequence[Plugin]
) -> tuple[Report, PlannedRun, ProbeSettings, bool]:
    """Plan, probe (with progress) and read the history; the caller emits, then ``publish``-es."""
    from probe.descriptors import raise_soft_limit  # noqa: PLC0415 - per command (start-up)

    # As servers do at start: the run's concurrency follows the descriptors actually available.
    raise_soft_limit()
    settings = settings_from_args(args)
    check_monitoring_args(args)
    planned = await plan_check(args, plugins, settings)
    progress = _progress(args, len(planned.specs))
    try:
        report = await execute(planned, settings, args, on_result=progress.update if progress else None)
    finally:
        if progress:
            progress.clear()
    return report, planned, settings, read_history(report, args)


async def cmd_check(args: argparse.Namespace, plugins: Sequence[Plugin]) -> int:
    report, _, _, append_history = await run_check(args, plugins)
    # The report first: the history and the metrics never hold it back.
    emit(report, args)
    await publish(report, args, append_history=append_history)
    return EXIT_CODES[report.status.value]


async def cmd_bundle(args: argparse.Namespace, plugins: Sequence[Plugin]) -> int:
    import asyncio  # noqa: PLC0415 - per command (start-up)
    import socket  # noqa: PLC0415 - per command (start-up)

    from probe.bundle import default_bundle_path, write_bundle  # noqa: PLC0415 - per command (start-up)
    from probe.render import verdict_line  # noqa: PLC0415 - per command (start-up)

    out = args.out or default_bundle_path(socket.gethostname())
    check_output_target("--out", out)
    report, planned, settings, append_history = await run_check(args, plugins)
    emit(report, args)
    await publish(report, args, append_history=append_history)
    try:
        found = await asyncio.to_thread(write_bundle, out, report, planned, env=settings.env, paths=settings.paths)
    except OSError as exc:
        raise UsageError(f"--out {out!r}: {exc.strerror or exc}") from None
    print(f"amlprobe: bundle written to {out} ({verdict_line(report)})", file=sys.stderr)
    if found:
        print(f"amlprobe: redacted {len(found)} secret(s) (listed in REDACTIONS.txt):", file=sys.stderr)
        for line in found:
            print(f"  {line}", file=sys.stderr)
    else:
        print("amlprobe: nothing needed redacting", file=sys.stderr)
    return EXIT_CODES[report.status.value]


def cmd_diff(args: argparse.Namespace) -> int:
    from probe.diff import DiffInputError, diff_reports, load_report, render_diff_json, render_diff_table  # noqa: PLC0415 - per command (start-up)

    try:
        old = load_report(args.old, "old")
        new = load_report(args.new, "new")
    except DiffInputError as exc:
        raise UsageError(str(exc)) from None
    diff = diff_reports(old, new)
    fmt = args.format or ("table" if sys.stdout.isatty() else "json")
    sys.stdout.write(render_diff_table(diff) if fmt == "table" else render_diff_json(diff))
    sys.stdout.flush()
    return 1 if diff.changed else 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        plugins = load_plugins()
        parser = build_parser(plugins)
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "schema":
            from probe.model import json_schema  # noqa: PLC0415 - per command (start-up)

            sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
            return 0
        if args.command in ("check", "bundle"):
            import asyncio  # noqa: PLC0415 - per command (start-up)

            from probe.interrupt import INTERRUPT  # noqa: PLC0415 - per command (start-up)

            # From here on a signal ends the run with a report, not mid-write (probe.interrupt).
            INTERRUPT.install()
            return asyncio.run((cmd_check if args.command == "check" else cmd_bundle)(args, plugins))
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return EXIT_USAGE
        result: int = handler(args)
        return result
    except UsageError as exc:
        with contextlib.suppress(OSError):
            print(f"amlprobe: error: {printable(exc, 2000)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("amlprobe: interrupted", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        return EXIT_USAGE
