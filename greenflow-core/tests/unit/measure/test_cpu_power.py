"""The table of known CPUs the model takes its default watts from, and how an entry is picked."""

from __future__ import annotations

import re

import pytest

from greenflow.measure.model import (
    CPU_TABLE,
    GENERIC,
    CpuInfo,
    CpuPower,
    PowerModel,
    lookup_cpu_power,
)

# /proc/cpuinfo of this project's development VM (KVM), cut to the fields that matter: the
# hypervisor reports a generic name and a family/model that is no server's, but AMX.
VM_CPUINFO = """\
processor	: 0
vendor_id	: GenuineIntel
cpu family	: 6
model		: 167
model name	: Intel(R) Xeon(R) Processor
stepping	: 1
flags		: fpu sse2 ht avx2 hypervisor avx512f avx512_bf16 amx_bf16 avx512_fp16 amx_tile amx_int8

processor	: 1
vendor_id	: GenuineIntel
cpu family	: 6
model		: 167
model name	: Intel(R) Xeon(R) Processor
stepping	: 1
flags		: fpu sse2 ht avx2 hypervisor
"""


def _cpu(
    name: str = "",
    vendor: str = "GenuineIntel",
    family: int | None = 6,
    model: int | None = None,
    stepping: int | None = None,
    flags: str = "",
    cpus: int = 2,
) -> CpuInfo:
    return CpuInfo(vendor, name, family, model, stepping, frozenset(flags.split()), cpus)


def test_cpuinfo_is_read_from_the_first_processor() -> None:
    """Vendor, name, family/model/stepping and flags come from the first block of /proc/cpuinfo."""
    cpu = CpuInfo.parse(VM_CPUINFO, logical_cpus=2, physical_cores=2)
    assert (cpu.vendor, cpu.model_name, cpu.family, cpu.model, cpu.stepping) == (
        "GenuineIntel",
        "Intel(R) Xeon(R) Processor",
        6,
        167,
        1,
    )
    assert {"amx_tile", "avx512f"} <= cpu.flags
    assert cpu.hypervisor
    assert cpu.describe()["flags"] == ["amx_tile", "avx512f", "hypervisor"]


def test_cpuinfo_without_the_fields_leaves_them_empty() -> None:
    """A cpuinfo without x86 fields (Arm, or an empty file) gives empty fields, not an error."""
    cpu = CpuInfo.parse("processor\t: 0\nCPU implementer\t: 0x41\n")
    assert (cpu.vendor, cpu.model_name, cpu.family, cpu.model, cpu.flags) == (
        "",
        "",
        None,
        None,
        frozenset(),
    )
    assert lookup_cpu_power(cpu).entry is GENERIC


def test_known_model_name_picks_its_entry() -> None:
    """A model name in the table picks that processor: TDP ÷ threads and idle ÷ threads."""
    match = lookup_cpu_power(
        _cpu("Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz", model=85, stepping=4, cpus=32)
    )
    assert (match.entry.key, match.rule) == ("xeon-gold-6130", "model name")
    assert match.entry.max_watts_per_cpu == pytest.approx(125 / 32)
    assert match.entry.idle_watts_per_cpu == pytest.approx(27 / 32)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Intel(R) Xeon(R) CPU E5-2630 v3 @ 2.40GHz", "xeon-e5-2630-v3"),
        ("Intel(R) Xeon(R) Gold 5220 CPU @ 2.20GHz", "xeon-gold-5220"),
        ("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz", "xeon-platinum-8380"),
        ("Intel(R) Xeon(R) Platinum 8480+", "xeon-platinum-8480+"),
        ("AMD EPYC 7742 64-Core Processor", "epyc-7742"),
        ("AMD EPYC 7763 64-Core Processor", "epyc-7763"),
    ],
)
def test_model_names_as_linux_reports_them(name: str, key: str) -> None:
    """The model names these processors report in /proc/cpuinfo find their entries."""
    assert lookup_cpu_power(_cpu(name)).entry.key == key


def test_a_neighbouring_sku_is_not_taken_for_a_known_one() -> None:
    """Gold 5220R (150 W, 24 cores) and Gold 6130T are other processors: no name match."""
    for name in ("Intel(R) Xeon(R) Gold 5220R CPU @ 2.20GHz", "Intel(R) Xeon(R) Gold 6130T"):
        assert lookup_cpu_power(_cpu(name)).rule != "model name"


def test_generic_vm_name_with_amx_is_a_sapphire_rapids_class_server() -> None:
    """A VM's generic "Intel(R) Xeon(R) Processor" with AMX gets the Sapphire Rapids entry by its
    flags, although its family/model says nothing: on 2 vCPUs 1.5625 W idle, 6.25 W max."""
    cpu = CpuInfo.parse(VM_CPUINFO, logical_cpus=2)
    match = lookup_cpu_power(cpu)
    assert (match.entry.key, match.rule, match.matched) == (
        "xeon-platinum-8480+",
        "flags",
        "amx_tile",
    )
    model = PowerModel.for_host(cpus=cpu.logical_cpus, cpu_power=match.entry)
    assert (model.idle_watts, model.max_watts) == (pytest.approx(1.5625), pytest.approx(6.25))


def test_unknown_cpu_is_generic() -> None:
    """A CPU neither named, flagged nor identified in the table gets the generic 1 W / 4 W per CPU."""
    cpu = _cpu("AMD Ryzen 7 5800X 8-Core Processor", "AuthenticAMD", 25, 33, 0, "avx2", cpus=16)
    match = lookup_cpu_power(cpu)
    assert (match.entry, match.rule) == (GENERIC, "generic")
    assert "generic" in match.entry.label
    model = PowerModel.for_host(cpus=16, cpu_power=match.entry)
    assert (model.idle_watts, model.max_watts) == (16.0, 64.0)


@pytest.mark.parametrize(
    ("stepping", "key"), [(4, "xeon-gold-6130"), (7, "xeon-gold-5220"), (11, "generic")]
)
def test_family_model_and_stepping_tell_the_microarchitecture(stepping: int, key: str) -> None:
    """Family 6 model 85 is Skylake-SP up to stepping 4, Cascade Lake at 5-7; Cooper Lake is
    not in the table."""
    cpu = _cpu("Intel Xeon Processor (Cascadelake)", model=85, stepping=stepping)
    match = lookup_cpu_power(cpu)
    assert match.entry.key == key
    if key != "generic":
        assert (match.rule, match.matched) == (
            "family/model",
            f"GenuineIntel family 6 model 85 stepping {stepping}",
        )


def test_flags_outrank_family_and_model() -> None:
    """AMX cannot be offered by a host without it, a family/model can be made up: AMX wins."""
    cpu = _cpu("Intel Xeon Processor (Skylake)", model=85, stepping=4, flags="amx_tile avx512f")
    assert lookup_cpu_power(cpu).entry.key == "xeon-platinum-8480+"


def test_plan_watts_win_over_the_table() -> None:
    """idle_watts/max_watts from the plan are kept; only what is unset comes from the entry."""
    spr = lookup_cpu_power(CpuInfo.parse(VM_CPUINFO)).entry
    assert PowerModel.for_host(idle_watts=3, max_watts=9, cpus=2, cpu_power=spr).idle_watts == 3
    model = PowerModel.for_host(idle_watts=3, cpus=2, cpu_power=spr)
    assert (model.idle_watts, model.max_watts) == (3, pytest.approx(6.25))


@pytest.mark.parametrize("entry", CPU_TABLE, ids=lambda e: e.key)
def test_every_entry_is_sound_and_sourced(entry: CpuPower) -> None:
    """Each entry idles below its TDP, says where its figures come from (TDP named as such),
    and is the one its own processor's name finds."""
    assert 0 < entry.idle_watts < entry.tdp_watts
    assert 1.0 < entry.max_watts_per_cpu < 6.0
    assert "TDP" in entry.source and "idle" in entry.source
    name = re.sub(r" \(.*\)$", "", entry.label)  # "Intel Xeon Gold 6130"
    assert lookup_cpu_power(_cpu(name)).entry is entry


def test_keys_are_unique() -> None:
    """Provenance names an entry by its key: one key, one entry."""
    keys = [e.key for e in (*CPU_TABLE, GENERIC)]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("config", "idle_from"),
    [({}, "table"), ({"idle_watts": 0.5, "max_watts": 9.0}, "plan")],
)
def test_model_collector_records_where_its_watts_came_from(
    config: dict[str, float], idle_from: str
) -> None:
    """The model collector's provenance names the CPU it saw, the entry it chose and the watts;
    plan watts are marked as the plan's, and the method stays model:linear."""
    from greenflow.api import CollectorContext, Inventory
    from greenflow.builtin.collectors import ModelCollector

    collector = ModelCollector("model", ModelCollector.Config(interval_s=3600, **config))
    collector.start(CollectorContext("test", Inventory(()), dict))
    try:
        facts = collector.describe()
    finally:
        collector.stop()
    cpu = CpuInfo.read()
    match = lookup_cpu_power(cpu)
    assert facts["method"] == "model:linear"
    assert facts["cpu"] == cpu.describe()
    assert facts["cpu_table"]["entry"] == match.entry.key
    assert facts["cpu_table"]["rule"] == match.rule
    if idle_from == "plan":
        assert (facts["idle_watts"], facts["max_watts"]) == (0.5, 9.0)
        assert facts["watts_from"] == {"idle_watts": "plan", "max_watts": "plan"}
    else:
        expected = "generic" if match.rule == "generic" else f"cpu table: {match.entry.key}"
        assert facts["watts_from"] == {"idle_watts": expected, "max_watts": expected}
        n = cpu.logical_cpus
        assert facts["idle_watts"] == pytest.approx(match.entry.idle_watts_per_cpu * n)
        assert facts["max_watts"] == pytest.approx(match.entry.max_watts_per_cpu * n)
    assert facts["steal_excluded_s"] >= 0
