"""Remove secrets from text before it leaves the machine (support bundles).

Generic and conservative: a false positive costs a support engineer one value, a miss leaks a
credential. Each secret becomes ``<redacted:KIND>``; the caller gets one line per redaction saying
what kind it was and where (line number, and the variable or key name when there is one), never
the secret itself. Markers are never redacted again, so running the engine twice is harmless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER_PREFIX = "<redacted:"
# Values that are already masked (by amlprobe's own URL redaction, or by whoever wrote the file).
_ALREADY_MASKED = re.compile(r"^(?:\*+|x+|X+|REDACTED|<redacted:[a-z_]+>|\.\.\.|)$")

# A key names a secret when one of its words (split on _ . - and camelCase) is one of these:
# CLIENT_SECRET, access_token, AccountKey, clientSecret, Pwd, SharedAccessSignature.
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:password|passwd|pwd|passphrase|secrets?|tokens?|credentials?|sas|sig|apikey|accountkey|"
    r"sharedaccesskey|sharedaccesssignature|connectionstring|"
    r"(?:account|storage|access|api|private|primary|secondary|master|signing|shared_access|client)_key|"
    r"shared_access_signature|connection_string)(?:_|$)"
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def is_secret_key(name: str) -> bool:
    words = _CAMEL.sub("_", name).lower()
    return bool(_SECRET_KEY.search(re.sub(r"[.\-]", "_", words)))


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    # Redact only when the match's ``key`` group names a secret.
    by_key: bool = False


_RULES = (
    # scheme://user:password@host (proxy URLs, database URLs).
    _Rule("URL password", re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s\"'<>]*:(?P<secret>[^@/\s\"'<>]+)@")),
    # Connection strings carry a whole SAS query string as one value.
    _Rule("shared access signature", re.compile(r"(?i)SharedAccessSignature=(?P<secret>[^;\s\"'<>]+)")),
    # A shared access signature's sig= parameter: the signature is what makes the URL usable.
    _Rule("SAS signature", re.compile(r"(?i)(?<![A-Za-z0-9_])sig=(?P<secret>[^&\s\"'<>;]+)")),
    # JWTs (identity-provider and managed-identity tokens): three base64url parts, the header starting {".
    _Rule("JWT", re.compile(r"\b(?P<secret>eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)")),
    _Rule("bearer token", re.compile(r"(?i)\bbearer\s+(?P<secret>[A-Za-z0-9._~+/-]{8,}=*)")),
    _Rule("basic auth", re.compile(r"(?i)\bbasic\s+(?P<secret>[A-Za-z0-9+/]{8,}=*)")),
    # Storage account keys: 64 random bytes in base64 are exactly 88 characters ending in ==.
    _Rule("storage account key", re.compile(r"(?<![A-Za-z0-9+/])(?P<secret>[A-Za-z0-9+/]{86}==)(?![A-Za-z0-9+/=])")),
    # JSON: "client_secret": "value"
    _Rule(
        "secret value",
        re.compile(r"\"(?P<key>[A-Za-z0-9_.-]{1,100})\"\s*:\s*\"(?P<secret>(?:[^\"\\\n]|\\.)+)\""),
        by_key=True,
    ),
    # NAME=value lines (environment dumps, env files): the whole rest of the line is the value.
    _Rule(
        "secret value",
        re.compile(r"(?m)^(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)=(?P<secret>.+)$"),
        by_key=True,
    ),
    # key=value inside connection strings, query strings and prose.
    _Rule(
        "secret value",
        re.compile(r"(?<![A-Za-z0-9_.-])(?P<key>[A-Za-z][A-Za-z0-9_.-]*)\s*=\s*(?P<secret>[^\s;&\"'<>,]+)"),
        by_key=True,
    ),
)


def _slug(kind: str) -> str:
    return kind.lower().replace(" ", "_")


def redact_text(text: str) -> tuple[str, list[str]]:
    """Return ``text`` with secrets replaced, and one description per redaction (kind and line)."""
    found: list[tuple[int, str]] = []
    for rule in _RULES:

        def replace(m: re.Match[str], rule: _Rule = rule, source: str = text) -> str:
            secret = m.group("secret")
            key = m.groupdict().get("key")
            if _ALREADY_MASKED.match(secret) or secret.startswith(MARKER_PREFIX):
                return m.group(0)
            if rule.by_key and not (key and is_secret_key(key)):
                return m.group(0)
            # Markers contain no newline, so line numbers found by later rules stay true.
            line = source.count("\n", 0, m.start("secret")) + 1
            found.append((line, f"{rule.kind} ({key})" if key else rule.kind))
            start, end = m.start("secret") - m.start(0), m.end("secret") - m.start(0)
            whole = m.group(0)
            return f"{whole[:start]}{MARKER_PREFIX}{_slug(rule.kind)}>{whole[end:]}"

        text = rule.pattern.sub(replace, text)
    found.sort()
    return text, [f"{what} at line {line}" for line, what in found]


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``****`` (``user:****@``); a lone user name, often a
    token, becomes ``****@``. Everything before the last ``@`` of the authority counts as
    credentials, so a password holding ``/`` or ``@`` is still hidden."""
    start = url.find("://")
    start = start + 3 if start >= 0 else 0
    at = url.rfind("@", start)
    if at < 0:
        return url
    userinfo = url[start:at]
    user, sep, _ = userinfo.partition(":")
    hidden = f"{user}:****" if sep else "****"
    return f"{url[:start]}{hidden}{url[at:]}"
