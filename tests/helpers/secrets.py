"""Planted secrets for the redaction tests: fixed and recognisable, so that a grep for them must come back empty."""

from __future__ import annotations

import base64

STORAGE_KEY = base64.b64encode(bytes(range(7, 71))).decode()
CONN_KEY = base64.b64encode(bytes(range(100, 164))).decode()
SAS_SIG = "Pl4nt3dS1gn4tur3%2Babc%3D"
PROXY_PASSWORD = "s3cr3tPr0xy"
CLIENT_SECRET = "Cl13nt~S3cr3t.value"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.c2lnbmF0dXJlcGxhbnRlZA"
CLI_PROXY_PASSWORD = "cl1Pr0xyPw"
