"""The committed gRPC code is what `make proto` generates from the .proto file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "services" / "protos"


def test_generated_grpc_code_is_up_to_date(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(PROTOS / "inventory.proto"),
        ],
        check=True,
    )
    grpc_code = (tmp_path / "inventory_pb2_grpc.py").read_text()
    grpc_code = grpc_code.replace("import inventory_pb2", "from services.protos import inventory_pb2", 1)
    assert (PROTOS / "inventory_pb2_grpc.py").read_text() == grpc_code, "run `make proto`"
    for name in ("inventory_pb2.py", "inventory_pb2.pyi"):
        assert (PROTOS / name).read_text() == (tmp_path / name).read_text(), (
            f"{name} is stale: run `make proto`"
        )
