"""Local facts from fixture files, real sockets, and real iptables/nft inside a network namespace."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.firewall import iptables_verdict, nft_verdict
from checks.localfacts import gather_local_facts, hosts_overrides, listeners, parse_resolv_conf
from tests.helpers.netns import python_in_netns, requires_netns

REPO = Path(__file__).resolve().parents[2]
PORT = 44224


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        "# Generated\nnameserver 10.0.0.4\nnameserver 168.63.129.16\n"
        "search a.internal b.internal\noptions edns0 timeout:1\n"
    )
    hosts = tmp_path / "hosts"
    hosts.write_text(
        textwrap.dedent(
            """\
            127.0.0.1 localhost
            10.1.0.5  1234.workspace.westeurope.api.azureml.ms 1234.workspace.westeurope.cert.api.azureml.ms # PE
            # 10.9.9.9 management.azure.com
            10.1.0.7  CI-Alice.westeurope.instances.azureml.ms.
            fd00::7   ci-alice.westeurope.instances.azureml.ms
            10.1.0.8  xmanagement.azure.com
            not-an-ip management.azure.com
            """
        )
    )
    return {"resolv_conf": resolv, "hosts_file": hosts, "systemd_resolved_conf": tmp_path / "missing-upstream"}


NAMES = [
    "1234.workspace.westeurope.api.azureml.ms",
    "ci-alice.westeurope.instances.azureml.ms",
    "management.azure.com",
    "login.microsoftonline.com",
]


def test_gather_local_facts_from_fixture_files(files: dict[str, Path]) -> None:
    env = {
        "HTTPS_PROXY": "http://alice:s3cret@proxy.corp:3128",
        "http_proxy": "http://proxy.corp:3128",
        "NO_PROXY": "localhost,.azureml.ms",
        "ALL_PROXY": "",
    }
    facts = gather_local_facts(env=env, names=NAMES, check_firewall=False, inbound_port=1, **files).model_dump()  # type: ignore[arg-type]
    json.dumps(facts)  # JSON-serialisable as a whole
    assert facts["errors"] == {}
    dns = facts["dns"]
    assert dns == {
        "resolv_conf": str(files["resolv_conf"]),
        "nameservers": ["10.0.0.4", "168.63.129.16"],
        "search": ["a.internal", "b.internal"],
        "options": ["edns0", "timeout:1"],
        "systemd_resolved_stub": False,
        "upstream": None,
        "effective_nameservers": ["10.0.0.4", "168.63.129.16"],
        "effective_source": str(files["resolv_conf"]),
    }
    assert facts["hosts_overrides"] == {
        "1234.workspace.westeurope.api.azureml.ms": ["10.1.0.5"],
        "ci-alice.westeurope.instances.azureml.ms": ["10.1.0.7", "fd00::7"],
    }
    assert facts["proxy"] == {
        "HTTPS_PROXY": "http://alice:****@proxy.corp:3128",
        "http_proxy": "http://proxy.corp:3128",
        "NO_PROXY": "localhost,.azureml.ms",
    }
    nics = facts["nics"]
    assert isinstance(nics, dict) and nics["lo"]["up"] is True
    assert {"family": "ipv4", "address": "127.0.0.1", "netmask": "255.0.0.0"} in nics["lo"]["addresses"]
    inbound = facts["inbound_44224"]
    assert inbound["firewall_drops"] is None and inbound["firewall_status"] == "unknown"  # type: ignore[index]


def test_systemd_resolved_stub_reads_the_upstream_file(files: dict[str, Path], tmp_path: Path) -> None:
    files["resolv_conf"].write_text("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch corp.example\n")
    facts = gather_local_facts(env={}, names=[], check_firewall=False, inbound_port=1, **files).model_dump()  # type: ignore[arg-type]
    dns = facts["dns"]
    assert dns["systemd_resolved_stub"] is True and dns["upstream"] is None  # type: ignore[index]
    assert dns["upstream_error"].endswith("No such file or directory")  # type: ignore[index]
    assert dns["effective_nameservers"] == ["127.0.0.53"]  # type: ignore[index]

    upstream = tmp_path / "upstream.conf"
    upstream.write_text(
        "# This is /run/systemd/resolve/resolv.conf\nnameserver 10.0.0.4\nnameserver 10.0.0.5\nsearch corp.example\n"
    )
    files["systemd_resolved_conf"] = upstream
    dns = gather_local_facts(env={}, names=[], check_firewall=False, inbound_port=1, **files).model_dump()["dns"]  # type: ignore[arg-type]
    assert dns["upstream"] == {  # type: ignore[index]
        "source": str(upstream),
        "nameservers": ["10.0.0.4", "10.0.0.5"],
        "search": ["corp.example"],
        "options": [],
    }
    assert dns["effective_nameservers"] == ["10.0.0.4", "10.0.0.5"]  # type: ignore[index]
    assert dns["effective_source"] == str(upstream)  # type: ignore[index]


def test_parse_resolv_conf_last_search_wins_and_comments() -> None:
    parsed = parse_resolv_conf("search a\ndomain b ; old\nnameserver 10.0.0.1 # primary\n;nameserver 10.0.0.9\n")
    assert parsed == {"nameservers": ["10.0.0.1"], "search": ["b"], "options": []}


def test_hosts_overrides_match_exact_names_only() -> None:
    text = "10.0.0.1 a.example b.example\n10.0.0.2 A.EXAMPLE\n10.0.0.3 sub.a.example\n"
    assert hosts_overrides(text, ["a.example.", "c.example"]) == {"a.example.": ["10.0.0.1", "10.0.0.2"]}


def test_unreadable_parts_are_recorded_not_raised(files: dict[str, Path], tmp_path: Path) -> None:
    files["hosts_file"] = tmp_path  # a directory: reading fails
    files["resolv_conf"] = tmp_path / "absent"
    facts = gather_local_facts(env={}, names=NAMES, check_firewall=False, inbound_port=1, **files).model_dump()  # type: ignore[arg-type]
    assert facts["hosts_overrides"] is None and facts["dns"] is None
    errors = facts["errors"]
    assert errors == {
        "hosts_overrides": f"{tmp_path}: Is a directory",
        "dns": f"{tmp_path / 'absent'}: No such file or directory",
    }


def test_real_listener_is_seen() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.bind(("127.0.0.1", 0))
        port = srv.getsockname()[1]
        assert listeners(port) == []
        srv.listen()
        assert listeners(port) == [f"127.0.0.1:{port}"]
        inbound = gather_local_facts(env={}, names=[], check_firewall=False, inbound_port=port).model_dump()[
            "inbound_44224"
        ]
        assert inbound["listening"] is True and inbound["port"] == port  # type: ignore[index]
    assert listeners(port) == []


def test_real_ipv6_listener_is_seen() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        srv.bind(("::1", 0))
        port = srv.getsockname()[1]
        srv.listen()
        assert listeners(port) == [f"[::1]:{port}"]


# Lines as the kernel prints them (a little-endian machine): 127.0.0.1:44224 and 0.0.0.0:22 in
# LISTEN (0A), one established connection to 44224 (01), and [::]:44224 / [::1]:631 in tcp6.
PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:ACC0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:ACC0 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
"""
PROC_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:ACC0 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000
   2: garbage
"""


def test_listeners_read_the_kernels_tables(tmp_path: Path) -> None:
    if sys.byteorder != "little":
        pytest.skip("the sample lines are a little-endian machine's")
    (tmp_path / "tcp").write_text(PROC_TCP)
    (tmp_path / "tcp6").write_text(PROC_TCP6)
    assert listeners(44224, tmp_path) == ["127.0.0.1:44224", "[::]:44224"]
    assert listeners(22, tmp_path) == ["0.0.0.0:22"]
    assert listeners(631, tmp_path) == ["[::1]:631"]
    assert listeners(54321, tmp_path) == []  # 0xD431 is only a remote port
    (tmp_path / "tcp6").unlink()  # IPv6 disabled: no table, no listener
    assert listeners(44224, tmp_path) == ["127.0.0.1:44224"]
    (tmp_path / "tcp").unlink()  # no IPv4 table: no /proc to read, which is not "nothing listens"
    with pytest.raises(FileNotFoundError):
        listeners(44224, tmp_path)


UFW_LIKE = """\
# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:ufw-before-input - [0:0]
:ufw-user-input - [0:0]
-A INPUT -j ufw-before-input
-A INPUT -j ufw-user-input
-A ufw-before-input -i lo -j ACCEPT
-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-input -m conntrack --ctstate INVALID -j DROP
-A ufw-before-input -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A ufw-before-input -p udp -m udp --dport 44224 -j ACCEPT
-A ufw-user-input -p tcp -m tcp --dport 22 -m comment --comment "ssh in" -j ACCEPT
{extra}
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -p tcp --dport 44224 -j ACCEPT
COMMIT
"""


@pytest.mark.parametrize(
    ("extra", "verdict"),
    [
        ("", "drop"),
        ("-A ufw-user-input -p tcp -m multiport --dports 443,44224 -j ACCEPT", "accept"),
        ('-A ufw-user-input -p tcp -m tcp --dport 44000:45000 -j LOG --log-prefix "[in] "', "drop"),
        ("-A ufw-user-input -s 10.0.0.0/8 -p tcp -m tcp --dport 44224 -j ACCEPT", "unknown"),
        ("-A ufw-user-input -p tcp ! --dport 22 -j ACCEPT", "accept"),
        ("-A ufw-user-input -p tcp --dport 44224 -j RETURN\n-A INPUT -j ACCEPT", "accept"),
        ("-A ufw-user-input -p tcp -m tcp --dport 44224 -m limit --limit 3/min -j ACCEPT", "unknown"),
        ("-A ufw-user-input -j NFQUEUE --queue-num 1", "unknown"),
    ],
)
def test_iptables_verdict(extra: str, verdict: str) -> None:
    assert iptables_verdict(UFW_LIKE.replace("{extra}", extra), PORT) == verdict


def test_iptables_verdict_edge_cases() -> None:
    accept_policy = (
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 44224 -j REJECT --reject-with tcp-reset\nCOMMIT\n"
    )
    assert iptables_verdict(accept_policy, PORT) == "drop"
    assert iptables_verdict(accept_policy, 44225) == "accept"
    assert iptables_verdict("", PORT) == "accept"  # no filter table: nothing filters
    assert iptables_verdict("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n", PORT) == "unknown"
    goto = "*filter\n:INPUT DROP [0:0]\n:c - [0:0]\n-A INPUT -g c\n-A INPUT -j ACCEPT\n-A c -p udp -j ACCEPT\nCOMMIT\n"
    assert iptables_verdict(goto, PORT) == "drop"  # returning from a goto'd chain ends INPUT: policy


NFT_POLICY_DROP = """\
table inet f {
\tset s {
\t\ttype ipv4_addr
\t\telements = { 1.1.1.1,
\t\t\t     2.2.2.2 }
\t}

\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tct state invalid drop
\t\tiif "lo" accept
\t\tudp dport 44224 accept
\t\t{rule}
\t}
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t}
}
"""


@pytest.mark.parametrize(
    ("rule", "verdict"),
    [
        ("", "drop"),
        ("tcp dport { 22, 44224 } accept", "accept"),
        ('tcp dport 44220-44230 log prefix "x " reject with tcp reset', "drop"),
        ("ip saddr @s tcp dport 44224 counter packets 0 bytes 0 accept", "unknown"),
        ('meta l4proto tcp tcp dport != 22 accept comment "all but ssh"', "accept"),
        ("tcp dport 44224 jump allow", "accept"),
        ('iifname != "lo" tcp dport 44224 accept', "accept"),
    ],
)
def test_nft_verdict(rule: str, verdict: str) -> None:
    text = NFT_POLICY_DROP.replace("{rule}", rule)
    if "jump allow" in rule:
        text += "table inet g {\n}\n"
        text = text.replace("\tchain output {", "\tchain allow {\n\t\taccept\n\t}\n\tchain output {")
    assert nft_verdict(text, PORT) == verdict


def test_nft_verdict_across_tables() -> None:
    accepting = NFT_POLICY_DROP.replace("{rule}", "tcp dport 44224 accept")
    dropping = (
        "table ip filter {\n\tchain INPUT {\n\t\ttype filter hook input priority filter; policy accept;\n"
        "\t\ttcp dport 44224 counter packets 0 bytes 0 drop\n\t}\n}\n"
    )
    assert nft_verdict(accepting + dropping, PORT) == "drop"
    assert (
        nft_verdict(
            "table inet f {\n\tchain fwd {\n\t\ttype filter hook forward priority 0; policy drop;\n\t}\n}\n", PORT
        )
        == "accept"
    )
    assert nft_verdict("", PORT) == "accept"
    assert nft_verdict("something else entirely", PORT) == "unknown"


@pytest.fixture
def fake_tools(tmp_path: Path) -> Iterator[Path]:
    """Stand-ins for a hung iptables-save and a refused nft (the real ones can't be made to do that)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {
        "iptables-save": "#!/bin/sh\nsleep 5 &\nsleep 5\n",
        "nft": "#!/bin/sh\necho 'netlink: Error: cache initialization failed: Operation not permitted' >&2\nexit 1\n",
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    yield bin_dir


def test_firewall_tools_that_hang_or_refuse_give_unknown(fake_tools: Path) -> None:
    facts = gather_local_facts(
        env={"PATH": str(fake_tools)}, names=[], inbound_port=1, firewall_timeout=0.3
    ).model_dump()
    inbound = facts["inbound_44224"]
    assert inbound["firewall_drops"] is None and inbound["firewall_status"] == "unknown"  # type: ignore[index]
    assert inbound["firewall"]["notes"] == [  # type: ignore[index]
        "iptables-save: no answer within 0.3s",
        "nft: exit 1: netlink: Error: cache initialization failed: Operation not permitted",
    ]


NETNS_CODE = """
import json, socket
from checks.localfacts import gather_local_facts
srv = socket.socket()
srv.bind(("0.0.0.0", 44224))
srv.listen()
facts = gather_local_facts(env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, names=[], firewall_timeout=2.0).model_dump()
print(json.dumps(facts["inbound_44224"]))
"""

needs_firewall_tools = pytest.mark.skipif(
    not all(shutil.which(t, path="/usr/sbin:/sbin:/usr/bin") for t in ("iptables", "iptables-save", "nft")),
    reason="iptables and nftables are not installed",
)


@requires_netns
@needs_firewall_tools
@pytest.mark.netns
@pytest.mark.parametrize(
    ("setup", "drops", "verdicts"),
    [
        ([], False, {"iptables-save": "accept", "nft": "accept"}),
        (["iptables -A INPUT -p tcp --dport 44224 -j DROP"], True, {"iptables-save": "drop", "nft": "drop"}),
        (
            [
                "nft add table inet f",
                "nft add chain inet f input '{ type filter hook input priority 0; policy drop; }'",
                "nft add rule inet f input ct state established,related accept",
                "nft add rule inet f input tcp dport '{ 22, 44224 }' accept",
            ],
            False,
            {"iptables-save": "accept", "nft": "accept"},
        ),
        (
            [
                "nft add table inet f",
                "nft add chain inet f input '{ type filter hook input priority 0; policy drop; }'",
                "nft add rule inet f input tcp dport 22 accept",
            ],
            True,
            {"iptables-save": "accept", "nft": "drop"},
        ),
    ],
)
def test_real_firewall_rules_in_a_namespace(setup: list[str], drops: bool, verdicts: dict[str, str]) -> None:
    proc = python_in_netns(setup, NETNS_CODE, timeout=30.0, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    inbound = json.loads(proc.stdout.strip().splitlines()[-1])
    assert inbound["listening"] is True and inbound["listeners"] == ["0.0.0.0:44224"]
    assert inbound["firewall"]["verdicts"] == verdicts
    assert inbound["firewall_drops"] is drops
    assert inbound["firewall_status"] == ("drops" if drops else "accepts")
