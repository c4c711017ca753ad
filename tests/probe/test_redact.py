"""probe.redact on its own: what it redacts, what it leaves alone, and how it says where."""

from __future__ import annotations

import pytest

from probe.redact import MARKER_PREFIX, is_secret_key, redact_text, redact_url
from tests.helpers.secrets import JWT, STORAGE_KEY


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        ("HTTPS_PROXY=http://user:p4ss@127.0.0.1:3128", "p4ss", "URL password"),
        ("see https://a.blob.core.windows.net/c/b?sv=2022-11-02&se=2030-01-01&sp=r&sig=AbC%2Bd", "AbC%2Bd", "SAS"),
        (f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={STORAGE_KEY};EndpointSuffix=x", STORAGE_KEY, "key"),
        (f"key is {STORAGE_KEY} there", STORAGE_KEY, "storage account key"),
        (f"Authorization: Bearer {JWT}", JWT, "JWT"),
        ("Authorization: Bearer abcdefgh12345678", "abcdefgh12345678", "bearer token"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", "basic auth"),
        ('{"client_secret": "hunter2x"}', "hunter2x", "secret value (client_secret)"),
        ('{"clientSecret": "hunter2x"}', "hunter2x", "secret value (clientSecret)"),
        ("AZURE_CLIENT_SECRET=hunter2 with spaces", "hunter2 with spaces", "secret value (AZURE_CLIENT_SECRET)"),
        ("export DB_PASSWORD=pw9", "pw9", "secret value (DB_PASSWORD)"),
        ("Server=x;User Id=u;Password=pw9;", "pw9", "secret value (Password)"),
        ("q?access_token=tok9&x=1", "tok9", "secret value (access_token)"),
        ("Endpoint=sb://x/;SharedAccessKeyName=n;SharedAccessKey=k3y9", "k3y9", "SharedAccessKey"),
        ("BlobEndpoint=https://x/;SharedAccessSignature=sv=2&sig=zz9", "zz9", "shared access signature"),
    ],
)
def test_redacts(text: str, secret: str, kind: str) -> None:
    out, found = redact_text(text)
    assert secret not in out
    assert "<redacted:" in out
    assert found and all(secret not in f for f in found)
    assert any(kind in f for f in found), found
    assert redact_text(out) == (out, [])  # markers are not redacted again


@pytest.mark.parametrize(
    "text",
    [
        '{"signing_required": "true", "reason": "tls_untrusted", "host": "x.blob.core.windows.net"}',
        "monkey=banana design=x tokenizer_mode=fast",
        "proxy http://user:****@127.0.0.1:3128 (already masked by amlprobe)",
        "nameserver 127.0.0.53\nsearch internal.cloudapp.net",
        "default via 10.0.0.1 dev eth0 proto dhcp src 10.0.0.4 metric 100",
        "sha256 " + "A" * 64,
    ],
)
def test_leaves_ordinary_text_alone(text: str) -> None:
    assert redact_text(text) == (text, [])


def test_locations_are_line_numbers() -> None:
    _, found = redact_text(f"a\nPASSWORD=pw1\nb\nurl http://u:pw@h/\nk {STORAGE_KEY}\n")
    assert found == ["secret value (PASSWORD) at line 2", "URL password at line 4", "storage account key at line 5"]


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("AZURE_CLIENT_SECRET", True),
        ("AccountKey", True),
        ("x-ms-token", True),
        ("storageKey", True),
        ("PWD", True),
        ("signing_required", False),
        ("tokenizer", False),
        ("HTTPS_PROXY", False),
        ("monkey", False),
    ],
)
def test_secret_key_names(name: str, secret: bool) -> None:
    assert is_secret_key(name) is secret


def test_each_secret_is_named_by_kind_never_by_value() -> None:
    text = "HTTPS_PROXY=http://alice:pr0xyPw@10.0.0.1:3128\nAccountKey=" + STORAGE_KEY + "\n"
    out, found = redact_text(text)
    assert out == (
        "HTTPS_PROXY=http://alice:<redacted:url_password>@10.0.0.1:3128\nAccountKey=<redacted:storage_account_key>\n"
    )
    assert found == ["URL password at line 1", "storage account key at line 2"]
    assert all(MARKER_PREFIX not in line for line in found)


def test_values_masked_by_someone_else_stay_as_they_are() -> None:
    for masked in ("****", "xxxx", "REDACTED", "...", "<redacted:secret_value>"):
        assert redact_text(f"DB_PASSWORD={masked}") == (f"DB_PASSWORD={masked}", [])


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://proxy.corp:3128", "http://proxy.corp:3128"),
        ("http://alice:s3cret@proxy.corp:3128", "http://alice:****@proxy.corp:3128"),
        ("http://alice:s3cret@proxy.corp:3128/", "http://alice:****@proxy.corp:3128/"),
        ("https://token@proxy.corp", "https://****@proxy.corp"),
        ("http://bob:p@ss/w:rd@[fd00::1]:8080", "http://bob:****@[fd00::1]:8080"),
        ("alice:s3cret@proxy.corp:3128", "alice:****@proxy.corp:3128"),
        ("socks5h://u:@10.0.0.1:1080", "socks5h://u:****@10.0.0.1:1080"),
        ("", ""),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert "s3cret" not in redact_url(url) and "p@ss" not in redact_url(url)


@pytest.mark.parametrize(
    "url",
    ["http://proxy.corp:3128", "https://example.org/path?q=1", "proxy.corp:3128", "", "http://[fd00::1]:8080/"],
)
def test_redact_url_leaves_urls_without_credentials_alone(url: str) -> None:
    assert redact_url(url) == url
