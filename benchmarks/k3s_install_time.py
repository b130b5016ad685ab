"""How long the k3s platform takes to install a cluster on 1, 3 and 6 SSH test hosts: the
hosts are installed in parallel, so 6 should take at most 1.5 × the time of 1 (issue 12).

    .venv/bin/python benchmarks/k3s_install_time.py [--sizes 1,3,6] [--repeat 2]

Each measurement is `greenflow up` on a plan of n hosts (gfh0 the control host, the others
load nodes; the k3s stand-in's artefacts uploaded, as air-gapped), from the command's start
to every node Ready, then `greenflow down` (timed too, not part of the target). Fresh hosts
for each size (scripts/ssh-hosts; root). The stand-in runs a real control plane and real
kubelets (docs/k3s-testing.md): what is measured is GreenFlow's install path — SSH,
uploads, the install script, the join, the wait — with the stand-in's start-up in place of
k3s'. Prints each size's median and the ratio to 1 host.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from greenflow_k3s.testing.hosts import ssh_hosts

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.5

PLAN = """\
[experiment]
name = "k3s-install-{n}"
baseline = "0s"
output = "{out}"

[platform]
type = "k3s"
install_script = "{artefacts}/install.sh"
k3s_binary = "{artefacts}/k3s"
ssh_config = "{ssh_config}"
ready_timeout = "5m"
{hosts}
[workload]
type = "command"
command = "true"
"""

HOST = """
[[platform.hosts]]
name = "{name}"
address = "{address}"
role = "{role}"
user = "root"
key = "{key}"
"""


def greenflow(cwd: Path, *args: str) -> float:
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "greenflow", "-q", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"greenflow {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - t0


def measure(n: int, artefacts: Path) -> tuple[float, float]:
    """(up seconds, down seconds) on ``n`` fresh hosts."""
    with ssh_hosts(n) as hosts, tempfile.TemporaryDirectory(prefix="gf-k3s-bench-") as tmp:
        work = Path(tmp)
        entries = "".join(
            HOST.format(
                name=h.name,
                address=h.address,
                role="control" if i == 0 else "worker",
                key=hosts.key,
            )
            for i, h in enumerate(hosts)
        )
        (work / "plan.toml").write_text(
            PLAN.format(
                n=n,
                out=work / "out",
                artefacts=artefacts,
                ssh_config=hosts.ssh_config,
                hosts=entries,
            )
        )
        up = greenflow(work, "up", "plan.toml")
        down = greenflow(work, "down", "plan.toml")
        return up, down


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,3,6")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="gf-k3s-standin-") as tmp:
        artefacts = Path(tmp)
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "k3s-standin" / "build"), str(artefacts)], check=True
        )
        ups: dict[int, list[float]] = {n: [] for n in sizes}
        downs: dict[int, list[float]] = {n: [] for n in sizes}
        for _ in range(args.repeat):
            for n in sizes:  # interleaved, so that a drift of the machine hits every size
                up, down = measure(n, artefacts)
                ups[n].append(up)
                downs[n].append(down)
                print(f"{n} host(s): up {up:.1f} s, down {down:.1f} s", flush=True)
    base = statistics.median(ups[sizes[0]])
    print(f"\n{'hosts':>5} {'up s (median)':>14} {'÷ 1 host':>9} {'down s':>7}")
    for n in sizes:
        up = statistics.median(ups[n])
        print(f"{n:>5} {up:>14.1f} {up / base:>9.2f} {statistics.median(downs[n]):>7.1f}")
    top = statistics.median(ups[sizes[-1]]) / base
    verdict = "met" if top <= TARGET else "MISSED"
    print(f"{sizes[-1]} hosts ÷ {sizes[0]}: {top:.2f} (target ≤ {TARGET}: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
