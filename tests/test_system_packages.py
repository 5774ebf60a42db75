"""A test that needs a program skips without it, a script fails without it: `make test` must provide every
such program, or CI skips that test on every run and nobody notices (shellcheck's test did, until `make
system-packages` installed it), or CI fails on a fresh machine (image-test did: debootstrap had been installed
by hand on the machine it was written on).

Each program a test looks up (`shutil.which("NAME")`), or a test, script or makefile tells the reader to
install (`apt-get install [options] NAME`), must come from `make test` itself: a Debian package of
`make system-packages` (SYSTEM_PACKAGES in the Makefile), a pinned tool of `make tools` (a recipe in
scripts/tools.conf), a package a script installs itself when missing
(`DEBIAN_FRONTEND=noninteractive apt-get install ... NAME`, as scripts/docker-engine.sh does docker.io), or
be part of the machine the brief promises (MACHINE, each with where it comes from)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Programs of the machine itself (the brief: Python 3.11, Go, Node, Rust; git), not installed by make test.
MACHINE = {
    "node": "Node.js is on the machine (the brief); mongosh's probe is checked with it",
    "git": "the repo is a git clone",
    "bash": "every script's shell",
    "go": "Go is on the machine (the brief); make tools builds with it",
}
LOOKED_UP = re.compile(r"""shutil\.which\(\s*["']([\w.+-]+)["']""")
INSTALL_HINT = re.compile(r"apt-get install\s+(?:-\S+\s+)*(?!-)([\w.+-]+)")
SELF_INSTALL = re.compile(r"DEBIAN_FRONTEND=noninteractive apt-get install\s+(?:-\S+\s+)*(?!-)([\w.+-]+)")


def system_packages(makefile: str) -> set[str]:
    match = re.search(r"^SYSTEM_PACKAGES\s*:?=\s*(.+)$", makefile, re.MULTILINE)
    assert match, "the Makefile has no SYSTEM_PACKAGES list"
    return set(match.group(1).split())


def pinned_tools() -> set[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "scripts" / "tools.conf")
    return set(parser.sections())


def needed_programs(sources: dict[str, str]) -> dict[str, set[str]]:
    """program -> the test files that need it."""
    needed: dict[str, set[str]] = {}
    for name, text in sources.items():
        for program in {*LOOKED_UP.findall(text), *INSTALL_HINT.findall(text)}:
            needed.setdefault(program, set()).add(name)
    return needed


def self_installed(sources: dict[str, str]) -> set[str]:
    """Packages a script or makefile installs itself when they are missing."""
    return {package for text in sources.values() for package in SELF_INSTALL.findall(text)}


def unprovided(sources: dict[str, str], makefile: str) -> list[str]:
    provided = system_packages(makefile) | pinned_tools() | set(MACHINE) | self_installed(sources)
    return [
        f"{program} (needed by {', '.join(sorted(files))})"
        for program, files in sorted(needed_programs(sources).items())
        if program not in provided
    ]


def test_make_test_provides_every_program_a_test_or_script_needs() -> None:
    paths = [
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "scripts").rglob("*.sh"),
        *(ROOT / "mk").glob("*.mk"),
        ROOT / "Makefile",
    ]
    this = Path(__file__)
    sources = {str(path.relative_to(ROOT)): path.read_text() for path in sorted(paths) if path != this}
    makefile = (ROOT / "Makefile").read_text()
    needed = needed_programs(sources)
    assert {"shellcheck", "chromium", "kubectl", "debootstrap", "wrk"} <= set(needed), sorted(needed)
    assert "system-packages" in re.search(r"^test:(.*)$", makefile, re.MULTILINE).group(1).split()  # type: ignore[union-attr]
    assert unprovided(sources, makefile) == []


def test_a_planted_program_nothing_installs_is_reported() -> None:
    makefile = "SYSTEM_PACKAGES := chromium shellcheck\n"
    planted = {
        "tests/test_x.py": 'if not shutil.which("hadolint"):\n    pytest.skip("apt-get install hadolint")\n',
        "tests/test_y.py": 'reason="apt-get install -y trivy to run it"\n',
        "tests/test_z.py": 'shutil.which("shellcheck"); shutil.which("kubectl"); shutil.which("node")\n',
        # A script that only tells the reader (what stand-in-bases.sh did with debootstrap) ...
        "scripts/bases.sh": 'command -v debootstrap || { echo "apt-get install debootstrap" >&2; exit 1; }\n',
        # ... and one that installs what it needs itself (options before the name are not programs).
        "scripts/engine.sh": "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null\n",
    }
    assert unprovided(planted, makefile) == [
        "debootstrap (needed by scripts/bases.sh)",
        "hadolint (needed by tests/test_x.py)",
        "trivy (needed by tests/test_y.py)",
    ]
