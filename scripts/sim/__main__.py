"""`python -m scripts.sim serve`: the simulated cluster's helper process, started by `make sim-up`.

It runs two things until SIGTERM (`make sim-down`):
- the API server's egress proxy on a Unix socket (scripts/sim/egress.py), and
- the local processes for the meshes' webhook servers (scripts/sim/controlplane.py: istiod).

Logs: <dir>/logs/controlplane.log (this process), <dir>/logs/<deployment>.log (each program it runs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from scripts.sim.controlplane import ControlPlane, run_forever
from scripts.sim.egress import EgressProxy


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scripts.sim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the egress proxy and the webhook servers until SIGTERM")
    serve.add_argument("--dir", type=Path, required=True, help="the simulated cluster's folder (.cache/sim)")
    serve.add_argument("--kubeconfig", type=Path, required=True)
    serve.add_argument("--context", required=True)
    serve.add_argument("--bin", type=Path, required=True, help="where the pinned tools are (./bin)")
    serve.add_argument("--socket", type=Path, required=True, help="the egress proxy's Unix socket")
    serve.add_argument(
        "--pidfile", type=Path, required=True, help="written once serving (make sim-down reads it)"
    )
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(args.kubeconfig), context=args.context, client_configuration=cfg)
    cfg.retries = 0  # the reconcile loop tries again every second
    api = client.ApiClient(cfg)
    control_plane = ControlPlane(api, args.bin, args.dir, args.kubeconfig, args.context)
    proxy = EgressProxy(str(args.socket), control_plane.service_for, control_plane.backend)
    args.socket.unlink(missing_ok=True)
    await proxy.start()

    stop = threading.Event()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    worker = threading.Thread(target=run_forever, args=(control_plane, stop), name="reconcile", daemon=True)
    worker.start()
    args.pidfile.write_text(f"{os.getpid()}\n")
    logging.getLogger("sim").info("serving, pid %d (%s)", os.getpid(), args.pidfile)
    await done.wait()
    logging.getLogger("sim").info("stopping")
    stop.set()
    await asyncio.to_thread(worker.join, 30)
    await proxy.close()
    args.socket.unlink(missing_ok=True)
    api.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # A session of its own: make sim-down ends this process and the programs it runs as one group.
    with contextlib.suppress(PermissionError):
        os.setsid()
    (args.dir / "logs").mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=args.dir / "logs" / "controlplane.log",
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
