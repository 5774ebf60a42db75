"""make up's image loading (scripts/lib.sh load_images) with stand-in kind and docker commands.

`kind load docker-image` fails on Docker's containerd image store (kubernetes-sigs/kind#3795); make up then
loads the same images through `docker save` + `kind load image-archive`.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.k8s.stubs import write_stub

REPO = Path(__file__).resolve().parents[2]
IMAGES = ["shop/order:0123456789ab", "shop/order:dev"]
# Stand-ins: record every call; a call whose arguments start with one of $FAIL (comma-separated) fails.
FAKE = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >>"$CALLS"
IFS=, read -ra fails <<<"${FAIL:-}"
for f in "${fails[@]}"; do
  [[ "$*" == "$f"* ]] && { echo "ERROR: $f failed: content digest not found" >&2; exit 1; }
done
if [[ "$1" == save && "$2" == -o ]]; then echo archive >"$3"; fi
if [[ "$1 $2" == "load image-archive" ]]; then test -s "${@: -1}"; fi
exit 0
"""


def load_images(tmp_path: Path, *failing: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run load_images with `failing` subcommands failing: (the process, the calls kind/docker got)."""
    fake = tmp_path / "fakebin"
    fake.mkdir(exist_ok=True)
    for name in ("kind", "docker"):
        write_stub(fake, name, FAKE)
    (tmp_path / "bin").mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    calls.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PATH": f"{fake}:{os.environ['PATH']}",
        "SHOP_BIN": str(tmp_path / "bin"),
        "CALLS": str(calls),
        "DRY_RUN": "0",
        "FAIL": ",".join(failing),
    }
    script = f"source scripts/lib.sh; load_images {' '.join(IMAGES)}; echo loaded"
    proc = subprocess.run(
        ["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    return proc, calls.read_text().splitlines() if calls.exists() else []


def test_kind_load_docker_image_is_used_when_it_works(tmp_path: Path) -> None:
    proc, calls = load_images(tmp_path)
    assert "loaded" in proc.stdout, proc.stderr
    assert calls == [f"kind load docker-image --name shop {' '.join(IMAGES)}"]


def test_falls_back_to_docker_save_and_image_archive(tmp_path: Path) -> None:
    proc, calls = load_images(tmp_path, "load docker-image")
    assert "loaded" in proc.stdout, proc.stderr
    assert calls[0] == f"kind load docker-image --name shop {' '.join(IMAGES)}"
    save, archive = calls[1:]
    assert save.startswith("docker save -o ") and save.endswith(" ".join(IMAGES))
    tar = save.split()[3]
    assert archive == f"kind load image-archive --name shop {tar}"
    assert not Path(tar).exists(), "the archive is removed after loading"
    assert "kubernetes-sigs/kind#3795" in proc.stderr


@pytest.mark.parametrize("fallback_step", ["save", "load image-archive"])
def test_a_failing_fallback_stops_make_up_with_the_reason(tmp_path: Path, fallback_step: str) -> None:
    proc, calls = load_images(tmp_path, "load docker-image", fallback_step)
    assert proc.returncode == 1 and "loaded" not in proc.stdout
    assert "ERROR: could not load the images into the kind node" in proc.stderr
    assert len(calls) == (2 if fallback_step == "save" else 3), calls
