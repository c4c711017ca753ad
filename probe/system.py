"""The machine's own files: where they are (SystemPaths, filled once from AMLPROBE_* by the command
line), and one parser each: resolv.conf(5), hosts(5), and the ``ip[:port]`` form of a DNS server
that --dns-server, the config and resolv.conf share.

Used by the prober's resolver, the machine facts, discovery and the bundle alike, so they all look
at the same files and read them the same way. Files are read as user-named files must be
(probe.files): regular files only, bounded.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import NamedTuple

from probe.files import MAX_CONFIG_BYTES, MAX_HOSTS_BYTES, read_text


# NamedTuples, not dataclasses: `amlprobe plan` imports this module, and a dataclass costs ~0.5 ms to make.
class SystemPaths(NamedTuple):
    """The machine's own files (and its metadata endpoint), each overridable for the lab and tests.

    ``from_env`` reads the overrides (AMLPROBE_RESOLV_CONF, ...); nothing else reads those variables.
    ``imds_url`` and ``nbvm`` are None unless overridden: the layer that reads them knows where the
    real ones are.
    """

    resolv_conf: str = "/etc/resolv.conf"
    hosts: str = "/etc/hosts"
    # systemd-resolved writes the real upstream servers here while /etc/resolv.conf points at its stub.
    resolved_conf: str = "/run/systemd/resolve/resolv.conf"
    dmi_asset_tag: str = "/sys/class/dmi/id/chassis_asset_tag"
    imds_url: str | None = None
    nbvm: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SystemPaths:
        """The defaults, with every non-empty AMLPROBE_* override of ``env`` applied."""
        given = {name: value for name, var in _OVERRIDES.items() if (value := env.get(var))}
        return cls(**given)


# SystemPaths field -> the environment variable that overrides it.
_OVERRIDES = {
    "resolv_conf": "AMLPROBE_RESOLV_CONF",
    "hosts": "AMLPROBE_HOSTS_FILE",
    "resolved_conf": "AMLPROBE_RESOLVED_CONF",
    "dmi_asset_tag": "AMLPROBE_DMI_PATH",
    "imds_url": "AMLPROBE_IMDS_URL",
    "nbvm": "AMLPROBE_NBVM_PATH",
}


class Server(NamedTuple):
    host: str
    port: int = 53

    def __str__(self) -> str:
        if self.port == 53:
            return self.host
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_server(spec: str) -> Server:
    """Parse "ip", "ip:port", "[v6]:port" or a bare IPv6 address; ValueError if it is none of them."""
    text = spec.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(f"invalid DNS server {spec!r}")
        port = rest[1:] or "53"
    else:
        try:
            ipaddress.ip_address(text)
            host, port = text, "53"
        except ValueError:
            host, _, port = text.rpartition(":")
    try:
        host = str(ipaddress.ip_address(host))
        number = int(port)
    except ValueError:
        raise ValueError(f"invalid DNS server {spec!r}: expected ip, ip:port or [ipv6]:port") from None
    if not 0 < number < 65536:
        raise ValueError(f"invalid DNS server {spec!r}: port out of range")
    return Server(host, number)


class ResolvConf(NamedTuple):
    """The lines of resolv.conf(5) amlprobe reads, in file order."""

    nameservers: list[str]
    search: list[str]
    options: list[str]

    def servers(self) -> list[str]:
        """The nameservers a query can be sent to (plain addresses), each once."""
        found: list[str] = []
        for entry in self.nameservers:
            try:
                parse_server(entry)
            except ValueError:
                continue
            if entry not in found:
                found.append(entry)
        return found


def parse_resolv_conf(text: str) -> ResolvConf:
    servers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for raw in text.splitlines():
        parts = raw.split("#", 1)[0].split(";", 1)[0].split()
        if len(parts) < 2:
            continue
        key, args = parts[0], parts[1:]
        if key == "nameserver":
            servers.append(args[0])
        elif key in ("search", "domain"):
            # The last search/domain line wins (resolv.conf(5)).
            search = list(args)
        elif key == "options":
            options.extend(args)
    return ResolvConf(servers, search, options)


def read_resolv_conf(path: str) -> ResolvConf:
    """Raises OSError when the file cannot be read."""
    return parse_resolv_conf(read_text(path, MAX_CONFIG_BYTES))


class Hosts(NamedTuple):
    """hosts(5) entries: (address, names) in file order; addresses as written (IPv6 scope included)."""

    entries: list[tuple[str, list[str]]]

    def addresses(self, name: str) -> list[str]:
        """The addresses given ``name`` (case and a trailing dot ignored), each once, in file order."""
        wanted = name.rstrip(".").lower()
        found: list[str] = []
        for address, names in self.entries:
            if wanted in names and address not in found:
                found.append(address)
        return found


def parse_hosts(text: str) -> Hosts:
    entries: list[tuple[str, list[str]]] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 2:
            continue
        try:
            address = str(ipaddress.ip_address(words[0]))
        except ValueError:
            continue
        entries.append((address, [w.rstrip(".").lower() for w in words[1:]]))
    return Hosts(entries)


def read_hosts(path: str) -> Hosts:
    """Raises OSError when the file cannot be read."""
    return parse_hosts(read_text(path, MAX_HOSTS_BYTES))
