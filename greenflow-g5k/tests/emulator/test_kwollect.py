"""The kwollect collector against the Grid'5000 API emulator, through python-grid5000:
energy from wall power per node, the metric chosen per cluster, the wait for samples
Kwollect has not stored yet, gaps, and the RAPL-versus-wall cross-check with the RAPL
counter and the wattmeter fed by one simulated machine.

SIMULATED: Grid'5000's API and Kwollect (greenflow_g5k.testing.emulator), the power the
wattmeters read (a function of time given to the emulator), and the RAPL counter (a
powercap tree advanced by a thread, greenflow.testing.powercap) — this VM has neither.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenflow.api import CollectorContext, Host, Inventory, Window
from greenflow.builtin.collectors import RaplCollector, RaplConfig
from greenflow.errors import CollectorError
from greenflow.measure.attribution import compute_run_metrics
from greenflow.measure.integrate import counter_delta
from greenflow.testing.powercap import ConstantPower
from greenflow_g5k.kwollect import KwollectCollector, KwollectCollectorConfig
from greenflow_g5k.testing import Cluster, G5kEmulator, Site

USER, PASSWORD = "alice", "s3cret-Pa55"
SITES = [
    Site(
        "lyon",
        clusters=[Cluster("nova", nodes=3, wattmeter=True), Cluster("taurus", nodes=2)],
    )
]
#: The simulated machine: its CPU package draws 30 W, the rest of it (fans, disks, memory,
#: power supply) 45 W more at the plug.
PACKAGE_W, REST_W = 30.0, 45.0


#: The ramp's origin: linear everywhere (a ``t % period`` would jump inside some windows).
_T0 = time.time()


def ramp(node: str, t: float) -> float:
    """A power that grows linearly with time (trapezoids integrate it exactly), distinct
    per node."""
    return 100.0 + int(node.rsplit("-", 1)[1]) + 0.05 * (t - _T0)


def _collector(emu: G5kEmulator, tmp_path: Path, **raw: object) -> KwollectCollector:
    credentials = tmp_path / "g5k.yaml"
    credentials.write_text(f"username: {USER}\npassword: {PASSWORD}\n")
    credentials.chmod(0o600)
    config = KwollectCollectorConfig(
        api_url=emu.url,
        credentials_file=str(credentials),
        poll=0.1,
        **raw,  # type: ignore[arg-type]
    )
    return KwollectCollector("wall", config)


def _inventory(*nodes: str) -> CollectorContext:
    hosts = [Host(n, f"{n}.lyon.grid5000.fr", {"worker"}) for n in nodes]
    return CollectorContext(experiment="x", inventory=Inventory(hosts))


@pytest.fixture
def emu() -> Iterator[G5kEmulator]:
    with G5kEmulator(SITES, username=USER, password=PASSWORD, power=ramp) as emulator:
        yield emulator


def test_energy_per_node_is_the_integral_of_its_wall_power(
    emu: G5kEmulator, tmp_path: Path
) -> None:
    """Wattmeters on nova (1 sample/s), the BMC on taurus (every 5 s); each node's counter
    over a window is the exact integral of its (linear) power, with its method."""
    collector = _collector(emu, tmp_path)
    collector.start(_inventory("nova-1", "nova-2", "taurus-1"))
    now = time.time()
    window = Window(now - 60, now - 20)
    samples = collector.collect(window)
    by_node: dict[str, list] = {}
    for s in samples:
        by_node.setdefault(s.host, []).append(s)
    assert sorted(by_node) == ["nova-1", "nova-2", "taurus-1"]
    for node, series in by_node.items():
        assert {s.method for s in series} == {
            "kwollect:bmc" if node.startswith("taurus") else "kwollect:wattmeter"
        }
        assert all(s.labels == {"domain": "host", "source": "wall"} for s in series)
        expected = 40 * (ramp(node, window.start) + ramp(node, window.end)) / 2
        assert counter_delta(series, window) == pytest.approx(expected, rel=1e-6)
    described = collector.describe()
    assert described["metrics"] == {
        "bmc_node_power_watt": ["taurus-1"],
        "wattmetre_power_watt": ["nova-1", "nova-2"],
    }


def test_it_waits_for_samples_kwollect_has_not_stored_yet(tmp_path: Path) -> None:
    """Kwollect stores samples 1.5 s late here: a window that ends now is read only once
    its end is covered."""
    with G5kEmulator(
        SITES, username=USER, password=PASSWORD, power=ramp, kwollect_delay=1.5
    ) as emu:
        collector = _collector(emu, tmp_path, wait=10)
        collector.start(_inventory("nova-1"))
        end = time.time()
        started = time.monotonic()
        samples = collector.collect(Window(end - 5, end))
        assert max(s.timestamp for s in samples) >= end
        assert time.monotonic() - started >= 1.0
        reads = [r for r in emu.requests if r.path.endswith("/metrics")]
        assert len(reads) >= 2  # polled until the samples arrived


def test_a_short_gap_is_bridged_and_a_long_one_fails_the_run(
    emu: G5kEmulator, tmp_path: Path
) -> None:
    collector = _collector(emu, tmp_path)
    collector.start(_inventory("nova-1"))
    now = time.time()
    window = Window(now - 60, now - 20)
    emu.add_gap("nova-1", now - 45, now - 40)  # 5 s of 40: bridged linearly
    samples = collector.collect(window)
    expected = 40 * (ramp("nova-1", window.start) + ramp("nova-1", window.end)) / 2
    assert counter_delta(samples, window) == pytest.approx(expected, rel=1e-6)
    emu.add_gap("nova-1", now - 40, now - 25)
    with pytest.raises(CollectorError, match=r"has no sample for 2[01] s of a 40 s window"):
        collector.collect(window)


def test_a_metric_the_cluster_lacks_is_refused_at_start(emu: G5kEmulator, tmp_path: Path) -> None:
    collector = _collector(emu, tmp_path, metric="wattmetre_power_watt")
    with pytest.raises(CollectorError, match="cluster taurus has no wattmetre_power_watt"):
        collector.start(_inventory("taurus-2"))


def test_rapl_against_the_wall_on_one_simulated_machine(emu: G5kEmulator, tmp_path: Path) -> None:
    """The same machine read by RAPL (its package, 30 W) and by its wattmeter (75 W at the
    plug): the host's energy is the wall's, and energy_to_wall_ratio is 30/75."""
    with ConstantPower(tmp_path / "powercap", PACKAGE_W, range_uj=2**32) as package:
        started = time.time()
        with G5kEmulator(
            SITES,
            username=USER,
            password=PASSWORD,
            power=lambda _n, t: PACKAGE_W + REST_W if t >= started else 0.0,
        ) as wall_emu:
            rapl = RaplCollector(
                "rapl", RaplConfig(root=str(package.tree.root), host="nova-1", interval_s=0.1)
            )
            wall = _collector(wall_emu, tmp_path)
            ctx = _inventory("nova-1")
            rapl.start(ctx)
            wall.start(ctx)
            time.sleep(5.5)
            window = Window(started + 1.2, started + 4.2)
            samples = list(rapl.collect(window)) + list(wall.collect(window))
            rapl.stop()
            wall.stop()
    metrics = compute_run_metrics(samples, window)
    (host,) = [m for m in metrics if m.name == "energy_joules" and m.labels["scope"] == "host"]
    assert host.method == "kwollect:wattmeter"
    assert host.value == pytest.approx((PACKAGE_W + REST_W) * 3, rel=0.02)
    (ratio,) = [m for m in metrics if m.name == "energy_to_wall_ratio"]
    assert ratio.method == "rapl/kwollect:wattmeter"
    assert ratio.value == pytest.approx(PACKAGE_W / (PACKAGE_W + REST_W), rel=0.05)
