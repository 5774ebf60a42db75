"""`make tools` / ensure_tool (scripts/lib-tools.sh, recipes in scripts/tools.conf) as a user meets it.

These run the real scripts with an empty tool cache and ./bin, a PATH holding only the basic utilities and
stand-ins for what each case needs (a curl that cannot reach the internet, a kind of some version), so they
behave the same on any machine, with or without internet or Go.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.k8s.stubs import write_stub

ROOT = Path(__file__).resolve().parents[2]
UTILITIES = [
    *("bash", "sh", "env", "awk", "sed", "grep", "cut", "tr", "head", "tail", "cat", "uname", "mktemp"),
    *("dirname", "basename", "mkdir", "rm", "mv", "ln", "chmod", "sort", "sha256sum", "shasum", "sleep"),
    *("touch", "cp", "date"),
]


def recipes() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "scripts" / "tools.conf")
    return parser


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, str]:
    """Environment: empty SHOP_BIN and SHOP_CACHE, PATH = basic utilities + a curl without internet."""
    path = tmp_path / "path"
    path.mkdir()
    for name in UTILITIES:
        found = shutil.which(name)
        if found:
            (path / name).symlink_to(found)
    write_stub(path, "curl", 'echo "curl: (6) Could not resolve host: github.com" >&2\nexit 6\n')
    return {
        "PATH": str(path),
        "HOME": str(tmp_path / "home"),
        "SHOP_BIN": str(tmp_path / "bin"),
        "SHOP_CACHE": str(tmp_path / "cache"),
    }


def ensure(env: dict[str, str], tool: str) -> subprocess.CompletedProcess[str]:
    script = f'source "{ROOT}/scripts/lib.sh" && ensure_tool {tool}'
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)


def test_without_internet_and_go_one_line_says_what_is_missing(sandbox: dict[str, str]) -> None:
    proc = ensure(sandbox, "kind")
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
    assert len(errors) == 1, proc.stderr
    assert "kind v0.31.0 is not available" in errors[0]
    assert "cannot resolve github.com (no internet?)" in errors[0]
    assert "no Go toolchain on PATH" in errors[0]
    assert "Connect to the internet" in errors[0] and "install Go" in errors[0]
    assert "curl: (6)" not in proc.stderr  # no raw curl errors
    assert not (Path(sandbox["SHOP_BIN"]) / "kind").exists()


def test_an_optional_tool_that_cannot_be_had_is_reported_missing_not_as_an_error(
    sandbox: dict[str, str],
) -> None:
    """`make tools` with TOOLS_OPTIONAL: the reason is printed, labelled as optional, and the run goes on;
    the same tool not optional is an ERROR and fails the run."""

    def tools_sh(*args: str) -> subprocess.CompletedProcess[str]:
        command = ["bash", str(ROOT / "scripts" / "tools.sh"), *args]
        return subprocess.run(command, env=sandbox, capture_output=True, text=True, timeout=120)

    optional = tools_sh("--optional", "kind", "kind")
    assert optional.returncode == 0, optional.stderr
    lines = optional.stderr.splitlines()
    assert not [ln for ln in lines if ln.startswith("ERROR")], optional.stderr
    reported = [ln for ln in lines if ln.startswith("MISSING (optional): kind v0.31.0 is not available")]
    assert reported, optional.stderr
    assert "==> kind is missing: what needs it skips, saying why" in lines

    required = tools_sh("kind")
    assert required.returncode == 1
    errors = [ln for ln in required.stderr.splitlines() if ln.startswith("ERROR")]
    assert errors[0].startswith("ERROR: kind v0.31.0 is not available"), required.stderr
    assert errors[-1] == "ERROR: missing tools: kind", required.stderr


def test_a_tool_on_path_at_exactly_the_pinned_version_is_used(
    sandbox: dict[str, str], tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    write_stub(mine, "kind", 'echo "kind v0.31.0 go1.25.5 linux/amd64"\n')
    env = {**sandbox, "PATH": f"{mine}:{sandbox['PATH']}"}
    proc = ensure(env, "kind")
    assert proc.returncode == 0, proc.stderr
    assert f"using {mine}/kind (on PATH, the pinned version)" in proc.stderr
    assert (Path(env["SHOP_BIN"]) / "kind").resolve() == (mine / "kind").resolve()


def test_a_tool_on_path_at_another_version_is_not_used(sandbox: dict[str, str], tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    write_stub(mine, "kind", 'echo "kind v0.30.0 go1.25.5 linux/amd64"\n')
    proc = ensure({**sandbox, "PATH": f"{mine}:{sandbox['PATH']}"}, "kind")
    assert proc.returncode == 1
    assert "using" not in proc.stderr and "kind v0.31.0 is not available" in proc.stderr


def test_a_binary_that_does_not_print_the_pinned_version_is_refused(
    sandbox: dict[str, str], tmp_path: Path
) -> None:
    """The version check runs on what a download or build produced: a wrong binary never reaches ./bin."""
    fake = tmp_path / "fake"
    fake.mkdir()
    # A "release" that downloads fine and matches its checksum, but is another version.
    write_stub(fake, "kind.bin", 'echo "kind v0.29.0 go1.24 linux/amd64"\n')
    checksum = subprocess.run(
        ["sha256sum", str(fake / "kind.bin")], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    write_stub(
        Path(sandbox["PATH"]),
        "curl",
        'out=""; while [ $# -gt 1 ]; do [ "$1" = -o ] && out="$2"; shift; done\n'
        f'case "$1" in *.sha256sum) echo "{checksum}  kind" >"$out" ;;\n'
        f'  *) cat "{fake}/kind.bin" >"$out" ;; esac\n',
    )
    proc = ensure(sandbox, "kind")
    assert proc.returncode == 1
    assert "does not print 'kind v0.31.0'" in proc.stderr
    assert not (Path(sandbox["SHOP_BIN"]) / "kind").exists()


def test_every_recipe_pins_a_version_a_check_and_a_source_or_download() -> None:
    parser = recipes()
    for name in parser.sections():
        fields: dict[str, str] = {}
        section: str | None = name
        while section is not None:  # `like` chains, as lib-tools.sh's recipe_load follows them
            fields = {**parser[section], **fields}
            section = parser[section].get("like")
        assert fields.get("version") and fields.get("check") and fields.get("expect"), name
        assert fields.get("download") or fields.get("module"), name
        if fields.get("download"):
            assert fields.get("checksum"), f"{name}: a download without a published checksum is never used"


def test_tools_list_names_every_recipe_with_its_source() -> None:
    proc = subprocess.run(
        [str(ROOT / "scripts" / "tools.sh"), "--list"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    listed = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert set(listed) == set(recipes().sections())
    assert "k8s.io/kubernetes@v1.35.0" in listed["kube-apiserver"]
    assert "istio.io/istio@" in listed["istioctl"]


def test_the_installed_tools_print_their_pinned_versions() -> None:
    """After `make tools` (make test runs it first): each tool in ./bin answers with its pinned version (or,
    for a recipe with a fallback, the fallback's). Outside CI a tool not installed yet skips; never in CI."""
    bin_dir = Path(os.environ.get("SHOP_BIN") or ROOT / "bin")
    optional = set(os.environ.get("TOOLS_OPTIONAL", "linkerd").split())
    names = subprocess.run(
        ["bash", "-c", f'source "{ROOT}/scripts/lib.sh" && tool_names'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    missing = [n for n in names if not (bin_dir / n).exists() and n not in optional]
    if missing and os.environ.get("CI") != "true":
        pytest.skip(f"not installed yet: {' '.join(missing)} (run make tools)")
    assert not missing, f"make tools did not install {missing}"
    for name in names:
        if not (bin_dir / name).exists():
            continue
        check = (
            f'source "{ROOT}/scripts/lib.sh" && for s in $(_recipe_chain {name}); do '
            f'RECIPE=; recipe_load "$s"; _passes_check "$BIN/{name}" && exit 0; done; exit 1'
        )
        proc = subprocess.run(["bash", "-c", check], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{bin_dir / name} does not print its pinned version: {proc.stderr}"


def test_make_up_without_internet_says_in_one_line_what_needs_it(tmp_path: Path) -> None:
    """Docker runs, no cluster yet, the node image is not local and nothing outside answers: one line."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    write_stub(stubs, "docker", '[ "$1" = info ] && { echo 16000000000; exit 0; }\nexit 1\n')
    write_stub(stubs, "kind", "exit 0\n")
    write_stub(stubs, "curl", "exit 6\n")  # curl's exit code for "could not resolve host"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("MESH", "DRY_RUN", "MAKEFLAGS")},
        "PATH": f"{stubs}:{os.environ['PATH']}",
        "SHOP_BIN": str(tmp_path / "bin"),
        "SHOP_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        [str(ROOT / "scripts" / "up.sh")], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 1
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("ERROR: no internet: a new cluster needs kind's node image")
    assert "Connect and run make up again" in errors[0]
    assert "[1/7]" not in proc.stderr  # stopped before doing anything
