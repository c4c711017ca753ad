"""Which certificates a TLS client trusts, and the SSL contexts built from them (once per run)."""

from __future__ import annotations

import os
import re
import ssl

from probe.files import MAX_CA_BUNDLE_BYTES, read_regular
from probe.settings import ProbeSettings

ALPN = ["http/1.1"]

# A PEM certificate block; probe.transport.x509 reads bundles with the same pattern.
PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


def ca_bundle_in_use(settings: ProbeSettings) -> str | None:
    """The CA file (or directory) verification uses; None means the system default store."""
    if settings.ca_bundle:
        return settings.ca_bundle
    if settings.trust_env:
        for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            value = settings.env.get(var)
            if value:
                return value
    return None


def read_pem_certificates(path: str) -> str:
    """The PEM certificates of a CA bundle file, read as a user-named file must be (probe.files).

    OpenSSL's ``cafile`` would open a FIFO and block; reading here first also drops comments in
    other encodings, which ``cadata`` would refuse. Raises OSError, or ssl.SSLError without any.
    """
    blocks = PEM_CERT.findall(read_regular(path, MAX_CA_BUNDLE_BYTES))
    if not blocks:
        raise ssl.SSLError(f"no PEM certificate in {path}")
    return b"\n".join(blocks).decode("ascii")


def make_ssl_context(settings: ProbeSettings, *, verify: bool = True) -> ssl.SSLContext:
    """A client context trusting exactly the bundle in use, or, with verify=False, anything.

    The unverified context exists only to read what certificate a peer presents after a
    verified handshake failed; nothing is ever sent over it.
    """
    if verify:
        bundle = ca_bundle_in_use(settings)
        if bundle is None:
            ctx = ssl.create_default_context()
        elif os.path.isdir(bundle):
            ctx = ssl.create_default_context(capath=bundle)
        else:
            ctx = ssl.create_default_context(cadata=read_pem_certificates(bundle))
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(ALPN)
    return ctx


class TlsContexts:
    """The run's two client contexts, each built on first use and then shared by every probe.

    Loading a CA store takes milliseconds; a run of TCP-only checks never pays for it. A bundle that
    cannot be loaded raises (OSError, ssl.SSLError) on each use, and each TLS check reports it.
    """

    def __init__(self, settings: ProbeSettings) -> None:
        self._settings = settings
        self._built: dict[bool, ssl.SSLContext] = {}

    def get(self, *, verify: bool = True) -> ssl.SSLContext:
        if verify not in self._built:
            self._built[verify] = make_ssl_context(self._settings, verify=verify)
        return self._built[verify]
