"""`make bench-profile CASE=<case>`: where the CPU of a case goes, per service, sampled by py-spy.

Starts the shop from this checkout (in-memory store), drives the case as `make bench` does, and meanwhile
samples every service process with py-spy (non-blocking, 100 Hz). Per service it writes the collapsed
stacks (`<service>.folded`: open it in https://www.speedscope.app or feed it to flamegraph.pl) and a
summary: how busy the process was, its CPU by package (the shop's own modules by file), and the functions
with the most time inside them. py-spy reads other processes' memory: root, or on Linux
`kernel.yama.ptrace_scope=0`.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench import usage
from bench.cases import BY_NAME, Case
from bench.drive import Target, drive, prepare_shoppers
from bench.stacks import Shop, current_tree
from scripts.dev import ROOT

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_IDLE = ("select (selectors.py", "EpollSelector.select (selectors.py", "poll (selectors.py")
THINK = (
    1.0,
    3.0,
)  # the checkout journey's shoppers pause between steps as `make load`'s do (bench/shoppers.py)


def py_spy() -> str:
    beside_python = Path(sys.executable).parent / "py-spy"
    if not beside_python.exists():
        raise RuntimeError("py-spy is not installed (pip: py-spy, pinned in requirements/dev.txt)")
    return str(beside_python)


def _frame(raw: str) -> tuple[str, str]:
    """(function, file) of a py-spy frame `function (file:line)`; the file relative to site-packages."""
    match = _FRAME.match(raw)
    if not match:
        return raw, ""
    file = match.group("file")
    if "site-packages/" in file:
        file = file.split("site-packages/", 1)[1]
    return match.group("function"), file


def _package(file: str) -> str:
    if file.startswith("<frozen importlib") or file.startswith("importlib"):
        return "importlib (imports during requests)"
    if file.startswith("services/") or file.startswith(str(ROOT)):
        return "shop: " + file.replace(str(ROOT) + "/", "")
    head = file.split("/", 1)[0]
    return head.removesuffix(".py")


def summarize(folded: str, top: int = 25) -> str:
    """A text summary of py-spy's collapsed stacks (one `frame;frame;... count` line per stack)."""
    total = idle = 0
    by_package: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in folded.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(raw) for raw in stack.split(";")]
        total += count
        if stack.rsplit(";", 1)[-1].startswith(_IDLE):
            idle += count
            continue
        importing = next((f for f in frames if _package(f[1]).startswith("importlib")), None)
        function, file = importing or frames[-1]
        by_package[_package(file)] += count
        own[f"{function} ({file})"] += count
        for name in {f"{fn} ({fl})" for fn, fl in frames}:
            inclusive[name] += count
    busy = total - idle
    if not busy:
        return "no samples while busy\n"
    lines = [
        f"samples: {total}, busy {busy} ({busy / total:.0%}), waiting in epoll {idle}",
        "",
        "by package:",
    ]
    lines += [f"  {100 * n / busy:5.1f}%  {name}" for name, n in by_package.most_common(top)]
    lines += ["", "inclusive (the function and what it calls):"]
    lines += [f"  {100 * n / busy:5.1f}%  {name}" for name, n in inclusive.most_common(top * 2)]
    lines += ["", "self (in the function itself):"]
    lines += [f"  {100 * n / busy:5.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines) + "\n"


def profile(case: Case, seconds: float, connections: int, shoppers: int, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shop = Shop(current_tree(), "memory", out / "logs")
    print(f"starting the shop for {case.name} ...", flush=True)
    shop.start()
    try:
        target = Target(shop)
        prepare_shoppers(target, [case], shoppers, "profile")
        url = shop.url(case.target)
        drive(case, target, url, min(seconds, 2.0), connections, THINK)  # warm up
        recorders = {}
        with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
            for name, pid in shop.pids.items():
                raw = Path(tmp) / f"{name}.folded"
                command = [
                    py_spy(),
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(seconds)),
                    "--rate",
                    "100",
                ]
                command += ["--nonblocking", "--format", "raw", "-o", str(raw)]
                recorders[name] = (
                    subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
                    raw,
                )
            time.sleep(0.5)
            meter = usage.CpuMeter(shop.pids.values())
            meter.start()
            result = drive(case, target, url, seconds - 1, connections, THINK)
            cpu = meter.stop()
            for name, (process, raw) in recorders.items():
                _, error = process.communicate(timeout=seconds + 60)
                if process.returncode != 0 or not raw.exists():
                    print(f"!! py-spy on {name}: {error.decode(errors='replace').strip()}", flush=True)
                    continue
                folded = raw.read_text()
                (out / f"{name}.folded").write_text(folded)
                (out / f"{name}.txt").write_text(summarize(folded))
        print(
            f"{case.name}: {result.rate:.1f}/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
            f"CPU {1000 * cpu / max(1, result.requests):.2f} ms per request (every service)",
            flush=True,
        )
        for name in shop.pids:
            summary = out / f"{name}.txt"
            if summary.exists():
                first = summary.read_text().splitlines()[0]
                print(f"  {name:<13} {first}", flush=True)
        print(f"written: {out}/<service>.txt (summary) and <service>.folded (collapsed stacks)", flush=True)
    finally:
        shop.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-profile", description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=[name for name, case in BY_NAME.items() if not case.needs_proxy])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--shoppers", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    case = BY_NAME[args.case]
    if case.target == "reference":
        parser.error("the reference app is not the shop: profile a shop case")
    out = args.out or ROOT / "artifacts" / "bench" / "profile" / case.name
    profile(case, args.seconds, args.connections, args.shoppers, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
