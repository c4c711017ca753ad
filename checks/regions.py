"""Region names per cloud (checks/data/regions.toml, with its sources): a typed region is checked here.

A typo such as ``eastuss`` would otherwise become a confident "NXDOMAIN" for every regional name, a
false diagnosis. So a name is judged against its cloud's list:

* a listed name (or its display form, ``East US``, which checks.sources already made ``eastus``) passes;
* a geography (``europe``), a closed cloud's region, or another cloud's region is refused, saying why;
* a near miss of a listed name (one edit away, two for longer names) is refused with "did you mean";
* anything else passes with a warning: regions are added every year, and an unlisted name far from
  every listed one may be new. A near miss that differs only in a trailing number (``westus4`` beside
  ``westus3``) is such a candidate too, not a typo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from checks import toml
from checks.catalog import DATA_DIR

REGIONS_FILE = DATA_DIR / "regions.toml"


@dataclass(frozen=True)
class RegionNames:
    # cloud -> every valid name in it (physical regions and special-purpose names)
    clouds: dict[str, frozenset[str]]
    geographies: frozenset[str]
    closed: frozenset[str]
    # The date the lists were compiled (for the warning about an unlisted name).
    as_of: str = "2025-09-23"


@cache
def region_names() -> RegionNames:
    data = toml.loads(REGIONS_FILE.read_text(encoding="utf-8"))
    clouds = {
        cloud: frozenset(data[cloud]["regions"]) | frozenset(data[cloud].get("special", []))
        for cloud in ("public", "usgov", "china")
    }
    other = data["not_regions"]
    return RegionNames(clouds=clouds, geographies=frozenset(other["geographies"]), closed=frozenset(other["closed"]))


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[-1]


def _stem(name: str) -> str:
    return name.rstrip("0123456789")


def _near_miss(name: str, names: frozenset[str]) -> str | None:
    """The listed name ``name`` is most likely a typo of, or None."""
    limit = 1 if len(name) <= 6 else 2
    scored = sorted((_edits(name, known), known) for known in names if abs(len(known) - len(name)) <= limit)
    if not scored or scored[0][0] > limit:
        return None
    _, best = scored[0]
    # westus4 beside westus3, eastus3 beside eastus2: a numbered sibling may be a new region.
    if _stem(name) == _stem(best) and name != _stem(name):
        return None
    return best


@dataclass(frozen=True)
class RegionCheck:
    """``error``: refuse the name (one sentence); ``warning``: take it, and say this in the report."""

    error: str | None = None
    warning: str | None = None


def check_region(name: str, cloud: str) -> RegionCheck:
    names = region_names()
    listed = names.clouds[cloud]
    if name in listed:
        return RegionCheck()
    plain = re.sub(r"[^a-z0-9]", "", name.lower())
    if plain != name and plain in listed:  # west-europe, West_Europe
        return RegionCheck(error=f"did you mean {plain}? (region names are letters and digits only)")
    if name in names.geographies:
        return RegionCheck(
            error="a geography, not a region: name the region the workspace is in, e.g. "
            "`az ml workspace show --query location`"
        )
    if name in names.closed:
        return RegionCheck(error="a region of the closed Azure Germany cloud")
    for other, other_names in names.clouds.items():
        if other != cloud and name in other_names:
            return RegionCheck(error=f"a region of the {other} cloud: add --cloud {other}")
    near = _near_miss(plain, listed)
    if near is not None:
        return RegionCheck(error=f"did you mean {near}?")
    for other, other_names in names.clouds.items():
        if other != cloud and (near := _near_miss(plain, other_names)) is not None:
            return RegionCheck(error=f"did you mean {near}? (a region of the {other} cloud: add --cloud {other})")
    return RegionCheck(
        warning=f"region {name!r} is not in amlprobe's list of {cloud} regions ({names.as_of}); if it is a"
        " region newer than that list, ignore this; if not, every regional name will look missing"
    )
