"""Rules for the workspace file share over SMB 445: blocked, no security settings in common with a Linux
client, or AES-256-GCM only. Sources: docs/sources.md, "SMB"."""

from __future__ import annotations

from checks.diagnosis.base import DOC_FILES_MOUNT, DOC_FILES_SMB, DOC_TRAINING_VNET, Evidence, Rule, hosts, rule
from checks.remedies import nsg_fix, smb_channel_encryption_fix, smb_settings_check
from probe.model import CheckResult, Finding, Protocol, Severity, Status
from probe.reasons import Reason


def _account(r: CheckResult) -> str:
    return r.target.host.split(".", 1)[0]


@rule(
    id="smb-no-common-security",
    severity=Severity.CRITICAL,
    title="Port 445 open but no common SMB security settings",
    cause="Something answers SMB on 445, but with no dialect or no cipher in common with what the Linux CIFS client"
    " of Ubuntu 22.04 offers: no encrypted session can be set up.",
    fix="Check the file service's SMB settings (versions, channel encryption), or what answers on 445 instead of"
    " Azure Files.",
    doc=DOC_FILES_SMB,
    remedies=(lambda c: smb_settings_check("<STORAGE_ACCOUNT>"),),
)
def smb_no_common_security(ev: Evidence, rule: Rule) -> list[Finding]:
    """Port 445 answers SMB, but with no dialect or no cipher in common with what a Linux client offers."""
    bad = ev.open(
        lambda r: (
            r.target.protocol is Protocol.SMB
            and r.reason in (Reason.SMB_NO_COMMON_CIPHER, Reason.SMB_NO_COMMON_DIALECT)
        )
    )
    if not bad:
        return []
    what = "cipher" if bad[0].reason is Reason.SMB_NO_COMMON_CIPHER else "SMB dialect"
    return [
        rule.finding(
            f"Port 445 answers, but with no {what} in common with a Linux client: the file share cannot be mounted",
            f"{bad[0].detail} Azure Files supports SMB 3.1.1, 3.0 and 2.1 and the ciphers AES-128-CCM, AES-128-GCM and"
            " AES-256-GCM, all of which the Linux client offers, so whatever answered is not an Azure Files endpoint"
            " as documented (a middlebox, another server), or its settings exclude every one of them.",
            ev.claim(bad),
            [smb_settings_check(_account(bad[0]))],
        )
    ]


def _refuses_aes128(r: CheckResult) -> bool:
    if r.smb is None or r.target.protocol is not Protocol.SMB or r.labels.get("resource") != "storage-file":
        return False
    return (
        any(c.agreed == "none" and set(c.offered) == {"AES-128-GCM", "AES-128-CCM"} for c in r.smb.cipher_checks)
        and r.smb.cipher == "AES-256-GCM"
    )


@rule(
    id="smb-encryption-aes256-only",
    severity=Severity.WARNING,
    title="The file share accepts only AES-256-GCM",
    cause="The share refuses AES-128-GCM and AES-128-CCM. Microsoft asks for AES-128-GCM to be enabled for mounts to"
    " work; Linux clients offer it first, and older kernels offer nothing stronger.",
    fix="Allow AES-128-GCM next to AES-256-GCM in the storage account's SMB channel encryption.",
    doc=DOC_FILES_MOUNT,
    remedies=(
        lambda c: smb_channel_encryption_fix("<STORAGE_ACCOUNT>"),
        lambda c: smb_settings_check("<STORAGE_ACCOUNT>"),
    ),
)
def smb_encryption_aes256_only(ev: Evidence, rule: Rule) -> list[Finding]:
    """The file share accepts only AES-256-GCM: Microsoft asks for AES-128-GCM to be enabled for mounts to work."""
    bad = ev.open(_refuses_aes128)
    if not bad:
        return []
    account = _account(bad[0])
    return [
        rule.finding(
            f"The file share of {account} accepts only AES-256-GCM: Linux mounts that start with AES-128-GCM fail",
            f'{bad[0].detail} Offered AES-128-GCM or AES-128-CCM alone, it agreed none. Microsoft: "To successfully'
            " mount or access a file share, the AES-128-GCM encryption algorithm should be enabled for all storage"
            ' accounts" (AKS troubleshooting, minimum encryption). A default Linux client offers AES-128-GCM first;'
            " Azure Files has been seen to agree it and then refuse the session (mount error 13), and Linux kernels"
            " before 5.13 do not offer AES-256-GCM at all. Microsoft's client-side workaround (options cifs"
            " require_gcm_256=1) is for clients you mount from yourself; Azure ML compute mounts the share itself, so"
            " the fix is the account's setting.",
            ev.claim(bad),
            [smb_channel_encryption_fix(account), smb_settings_check(account)],
        )
    ]


@rule(
    id="smb-445-blocked",
    severity=Severity.CRITICAL,
    title="SMB 445 blocked",
    cause="Outbound TCP 445 to storage is blocked: the workspace file share cannot mount.",
    fix="Allow outbound TCP 445 to Storage (or the storage private endpoint).",
    doc=DOC_TRAINING_VNET,
    remedies=(lambda c: nsg_fix(c, "Storage", "Tcp", "445"),),
)
def smb_445_blocked(ev: Evidence, rule: Rule) -> list[Finding]:
    bad = ev.open(lambda r: r.target.protocol is Protocol.SMB and r.status is Status.FAIL)
    if not bad:
        return []
    return [
        rule.finding(
            "SMB 445 to workspace storage is blocked: the file share cannot be mounted",
            f"{hosts(bad)}: {bad[0].detail} Compute instances and clusters mount the workspace file share"
            " over SMB; without it they fail with StorageMountError.",
            ev.claim(bad),
            rule.fixes(ev.remedies),
        )
    ]
