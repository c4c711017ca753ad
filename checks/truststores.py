"""Which trust stores on this machine trust a given issuer: the classic cause of
"unable to get local issuer certificate" is a CA present in one store and missing from another.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from probe.files import MAX_CA_BUNDLE_BYTES, read_regular
from probe.model import TlsFacts

OS_BUNDLES = (
    Path("/etc/ssl/certs/ca-certificates.crt"),  # Debian, Ubuntu
    Path("/etc/pki/tls/certs/ca-bundle.crt"),  # RHEL family
)
# Where a conda distribution keeps its own CA bundle (<prefix>/ssl/cacert.pem, the ca-certificates
# package's layout). The prefixes are assumptions, not read in a source: /anaconda is where the Data
# Science VM images install Anaconda, /opt/conda the common container prefix. A prefix that does not
# exist is simply not listed.
CONDA_BUNDLES = (Path("/anaconda/ssl/cacert.pem"), Path("/opt/conda/ssl/cacert.pem"))


def candidate_stores(env: dict[str, str] | None = None) -> dict[str, Path]:
    env = dict(os.environ) if env is None else env
    stores: dict[str, Path] = {}
    for p in OS_BUNDLES:
        if p.is_file():
            stores[f"OS bundle ({p})"] = p
            break
    try:
        import certifi  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415 - optional dependency

        stores[f"Python certifi ({certifi.where()})"] = Path(certifi.where())
    except ImportError:
        pass
    conda = [Path(env["CONDA_PREFIX"]) / "ssl" / "cacert.pem"] if env.get("CONDA_PREFIX") else []
    for p in (*conda, *CONDA_BUNDLES):
        if p.is_file():
            stores[f"conda ({p})"] = p
            break
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        if env.get(var) and Path(env[var]).is_file():
            stores[f"{var} ({env[var]})"] = Path(env[var])
    return stores


@functools.lru_cache(maxsize=16)
def _subjects(path: Path) -> frozenset[str]:
    from probe.transport.x509 import pem_certificates  # noqa: PLC0415 - cryptography ~60 ms, only when a bundle is read

    try:
        certs = pem_certificates(read_regular(path, MAX_CA_BUNDLE_BYTES))
    except OSError:
        return frozenset()
    return frozenset(c.subject.rfc4514_string() for c in certs)


def stores_trusting(tls: TlsFacts, env: dict[str, str] | None = None) -> dict[str, bool | None]:
    """Store -> does it hold the root the chain led to (or the leaf's issuer); None when unreadable."""
    wanted = {s for s in (tls.trust_anchor, tls.leaf.issuer if tls.leaf else None) if s}
    wanted |= {c.issuer for c in tls.chain}
    out: dict[str, bool | None] = {}
    for name, path in candidate_stores(env).items():
        subjects = _subjects(path)
        out[name] = bool(subjects & wanted) if subjects else None
    if tls.ca_bundle:
        subjects = _subjects(Path(tls.ca_bundle))
        out[f"--ca-bundle ({tls.ca_bundle})"] = bool(subjects & wanted) if subjects else None
    return out
