"""Every reference the product makes resolves inside this repository.

The catalog's ``ref`` fields and the code cite public documents by key (``[S4]``, docs/sources.md), rows of
the requirements reference (``§1b #33``, ``§4 Tundra``, "open question 4": docs/requirements.md), the audit
behind issue 9 ("real-world-azure.md Q2a": docs/real-world-azure.md) and the research behind issue 10
("research A4": docs/research/issue-10-sources.md). None names a file outside the repository.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
# What ships and is read by people: code, catalog, docs, deployment.
PRODUCT = [
    *(p for pkg in ("amlprobe", "probe", "checks", "lab") for p in (REPO / pkg).rglob("*.py")),
    *(REPO / "checks" / "data").glob("*.toml"),
    *DOCS.rglob("*.md"),
    REPO / "README.md",
    *(p for p in (REPO / "deploy").iterdir() if p.is_file()),
]
# A § that belongs to another document's numbering (RFC 9110 §7.6.3, [MS-SMB2] 2.2.3).
# §1b, then its rows (#6, #14-#17), then a row's name up to the end of the clause (§4 Storage suffix).
_SECTION = re.compile(
    r"§ ?(\d[a-z]?)((?: #\d+(?:-#\d+)?,?)*)(?: ([A-Za-z][\w /()-]*?))?(?=[,;\[\])\"]|$| \(| row| mapped)"
)
_EXTERNAL = re.compile(r"(RFC ?\d{3,5}|MS-SMB2\]?|RFC 6455's)[^.;|)]{0,12}$")


def _source_keys() -> set[str]:
    text = (DOCS / "sources.md").read_text(encoding="utf-8").split("## Source key", 1)[1]
    return set(re.findall(r"^\| ([SH]\d+) \|", text, re.MULTILINE))


def _requirements() -> dict[str, str]:
    """docs/requirements.md by section: "1a", "1b", "2" ... "6", "open": the section's text."""
    text = (DOCS / "requirements.md").read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    for head, body in re.findall(r"^#{2,3} (\S+?)\.? [^\n]*\n(.*?)(?=^#{2,3} |\Z)", text, re.MULTILINE | re.DOTALL):
        sections[head.lower().rstrip(".")] = body
    sections["1"] = sections.get("1", "") + sections.get("1a", "") + sections.get("1b", "")
    sections["open"] = text.split("## Open questions", 1)[1]
    return sections


REQ = _requirements()
KEYS = _source_keys()


def _rows(section: str) -> list[str]:
    """The first cell of every row of the section's tables."""
    return [m.strip().strip("`").lower() for m in re.findall(r"^\| ([^|]+) \|", REQ[section], re.MULTILINE)]


def _plain(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _problems(where: str, text: str, *, rows: bool = False) -> list[str]:
    """What in ``text`` does not resolve; ``rows``: also the row names after §3/§4 (a ``ref`` field names them)."""
    out = []
    for group in re.findall(r"\[((?:[SH]\d+)[^\]]*)\]", text):
        out += [f"{where}: [{k}] is not in docs/sources.md" for k in re.findall(r"\b[SH]\d+\b", group) if k not in KEYS]
    for match in _SECTION.finditer(text):
        before = text[max(0, match.start() - 30) : match.start()]
        if _EXTERNAL.search(before):
            continue
        section, numbers, name = match.group(1), match.group(2), match.group(3)
        if section not in REQ:
            out.append(f"{where}: §{section} is not a section of docs/requirements.md")
            continue
        for number in re.findall(r"#(\d+)", numbers):
            if f"| {number} |" not in REQ[section]:
                out.append(f"{where}: §{section} #{number} is not a row of docs/requirements.md")
        item = re.fullmatch(r"item (\d+)", (name or "").strip())
        if item and not re.search(rf"^{item.group(1)}\. ", REQ[section], re.MULTILINE):
            out.append(f"{where}: §{section} item {item.group(1)} is not in docs/requirements.md")
        elif (
            name
            and not item
            and rows
            and section in ("3", "4")
            and not numbers
            and not any(_plain(row).startswith(_plain(name)) for row in _rows(section))
        ):
            out.append(f"{where}: §{section} {name.strip()!r} is not a row of docs/requirements.md")
    for number in re.findall(r"open questions? (\d+)", text):
        if not re.search(rf"^{number}\. ", REQ["open"], re.MULTILINE):
            out.append(f"{where}: open question {number} is not in docs/requirements.md")
    audit = (DOCS / "real-world-azure.md").read_text(encoding="utf-8")
    for q, sub in re.findall(r"real-world-azure\.md Q(\d)([a-c]?)", text):
        heading = rf"^## Q{q}\. " if not sub else rf"^### {q}{sub}\. "
        if not re.search(heading, audit, re.MULTILINE):
            out.append(f"{where}: real-world-azure.md Q{q}{sub} is not in docs/real-world-azure.md")
    research = (DOCS / "research" / "issue-10-sources.md").read_text(encoding="utf-8")
    for part in re.findall(r"research ([A-D]\d[a-e]?)", text):
        if not re.search(rf"^#{{2,3}} {part}\. ", research, re.MULTILINE):
            out.append(f"{where}: research {part} is not in docs/research/issue-10-sources.md")
    return out


def test_the_references_have_something_to_resolve_against() -> None:
    assert {"S1", "S4", "S12", "S20", "H1"} <= KEYS
    assert {"1a", "1b", "2", "3", "4", "5", "6", "open"} <= set(REQ)
    assert "tundra (udp 5831)" in _rows("4")
    assert len(_problems("self-test", "§9, [S99], §1b #99, open question 42, research A9, §4 Nothing", rows=True)) == 6


def test_every_catalog_ref_resolves() -> None:
    refs = 0
    problems: list[str] = []
    for path in sorted((REPO / "checks" / "data").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for table in ("endpoint", "private_dns"):
            for row in data.get(table, []):
                if "ref" in row:
                    refs += 1
                    problems += _problems(f"{path.name} {row['id']}", row["ref"], rows=True)
    assert refs > 200
    assert problems == [], "\n".join(problems)


def test_every_citation_in_the_product_resolves() -> None:
    problems: list[str] = []
    for path in PRODUCT:
        if path.is_relative_to(DOCS / "research") or path.name == "real-world-azure.md":
            continue  # their own numbering and keys, defined inside them
        problems += _problems(str(path.relative_to(REPO)), path.read_text(encoding="utf-8"))
    assert problems == [], "\n".join(problems)


def test_no_product_file_names_a_path_outside_the_repository() -> None:
    hits = [str(p.relative_to(REPO)) for p in PRODUCT if "/work/" in p.read_text(encoding="utf-8")]
    assert hits == []
