"""A CA bundle is parsed certificate by certificate: one block cryptography refuses loses only itself."""

from __future__ import annotations

import base64
from pathlib import Path

import trustme

from checks import truststores
from probe.transport.x509 import load_bundle, pem_certificates


def _bundle_with_a_broken_block(tmp_path: Path) -> tuple[Path, str]:
    ca = trustme.CA()
    good = ca.cert_pem.bytes()
    # A well-formed PEM block whose DER is no certificate (a refused one, as a future cryptography
    # refuses a non-positive serial number).
    junk = base64.encodebytes(b"\x30\x03\x02\x01\x00" * 20).decode()
    broken = f"-----BEGIN CERTIFICATE-----\n{junk}-----END CERTIFICATE-----\n".encode()
    path = tmp_path / "bundle.pem"
    path.write_bytes(broken + good)
    subject = pem_certificates(good)[0].subject.rfc4514_string()
    return path, subject


def test_a_refused_block_loses_only_itself(tmp_path: Path) -> None:
    path, subject = _bundle_with_a_broken_block(tmp_path)
    certs = pem_certificates(path.read_bytes())
    assert [c.subject.rfc4514_string() for c in certs] == [subject]
    assert [c.subject.rfc4514_string() for c in load_bundle(str(path))] == [subject]


def test_trust_store_facts_keep_the_good_certificates(tmp_path: Path) -> None:
    path, subject = _bundle_with_a_broken_block(tmp_path)
    truststores._subjects.cache_clear()
    assert truststores._subjects(path) == frozenset({subject})


def test_no_certificate_at_all_is_an_empty_list() -> None:
    assert pem_certificates(b"not a bundle") == []
