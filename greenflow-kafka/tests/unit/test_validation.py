"""What `greenflow validate` and `greenflow run` say about bad kafka-ingest plans and a host
without Java or Maven: the section and key at fault, a hint, and never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from greenflow.cli import main

PLAN = """\
[experiment]
name = "validation"
output = "{output}"
baseline = "1s"

[platform]
type = "local"

[[services]]
type = "kafka"
brokers = 1
heap = "256m"

[workload]
type = "kafka-ingest"
{workload}
warmup = "1s"
duration = "3s"
"""


def _plan(tmp_path: Path, workload: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(PLAN.format(output=tmp_path / "out", workload=workload))
    return path


@pytest.mark.parametrize(
    ("workload", "key"),
    [
        pytest.param(
            "load = 1000\nmessage_size = 0",
            "message_size",
            id="message_size=0",
        ),
        pytest.param("load = -5", "load", id="load=-5"),
        pytest.param("load = 1000\npartitions = 0", "partitions", id="partitions=0"),
        pytest.param("load = 1000\nreplication = 3", "replication", id="replication=3,brokers=1"),
        pytest.param('load = 1000\nacks = "some"', "acks", id="acks=some"),
        pytest.param("load = 1000\nlinger = 5", "linger", id="unknown-key"),
    ],
)
def test_validate_rejects_a_bad_workload_naming_the_section_and_key(
    tmp_path: Path, workload: str, key: str
) -> None:
    """`greenflow validate` exits non-zero naming [workload] and the key, without a traceback."""
    result = CliRunner().invoke(main, ["validate", str(_plan(tmp_path, workload))])
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code != 0, text
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    assert "Traceback" not in text
    assert "[workload]" in text, text
    # "load" is inside "[workload]": look for the key as a word elsewhere in the message.
    assert re.search(rf"\b{key}\b", text.replace("[workload]", "")), text


def test_validate_accepts_the_good_plan(tmp_path: Path) -> None:
    """The plan the rejections above start from is itself valid (each case changes one key)."""
    result = CliRunner().invoke(main, ["validate", str(_plan(tmp_path, "load = 1000"))])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("tools", "hint"),
    [
        pytest.param((), "apt-get install openjdk-17-jdk-headless", id="no-java"),
        pytest.param(("java",), "apt-get install maven", id="java-but-no-mvn"),
    ],
)
def test_run_without_java_or_mvn_exits_1_with_the_install_hint(
    tmp_path: Path, tools: tuple[str, ...], hint: str
) -> None:
    """With a cold jar cache, no KAFKA_HOME and java or mvn missing, `greenflow run` exits 1 with
    the documented hint and no traceback."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        real = next(
            (Path(d) / tool for d in os.get_exec_path() if (Path(d) / tool).is_file()), None
        )
        if real is None:
            pytest.skip(f"no {tool} on this host to offer the subprocess")
        (bin_dir / tool).symlink_to(real)
    cache = tmp_path / "cold-cache"
    cache.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"JAVA_HOME", "KAFKA_HOME", "PATH"}}
    env.update(PATH=str(bin_dir), XDG_CACHE_HOME=str(cache), HOME=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "greenflow", "run", str(_plan(tmp_path, "load = 1000"))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 1, out
    assert hint in proc.stderr, out
    if not tools:
        assert "JAVA_HOME" in proc.stderr, out
    else:
        assert "KAFKA_HOME" in proc.stderr, out
    assert "Traceback" not in proc.stdout + proc.stderr, out
    assert not list(cache.rglob("*.jar")), (
        "jars appeared in the cache although Java or Maven is missing"
    )


def _heap_plan(tmp_path: Path, services: str) -> Path:
    path = tmp_path / "plan.toml"
    plan = PLAN.format(output=tmp_path / "out", workload="load = 1000")
    path.write_text(plan.replace('brokers = 1\nheap = "256m"\n', services))
    return path


def test_validate_refuses_a_heap_larger_than_this_machine(tmp_path: Path) -> None:
    """A local broker heap beyond this machine's memory is refused at validate, naming the key
    and both sizes (heap = "64g" on a 23 GiB machine was accepted)."""
    import psutil

    too_big = f"{psutil.virtual_memory().total // (1 << 30) + 2}g"
    result = CliRunner().invoke(
        main, ["validate", str(_heap_plan(tmp_path, f'heap = "{too_big}"\n'))]
    )
    assert result.exit_code == 1, result.output
    text = result.output
    assert "[services.0]" in text and f"heap: {too_big} does not fit in this machine's" in text
    assert "Traceback" not in text


def test_the_heaps_of_all_local_jvms_must_fit(tmp_path: Path) -> None:
    """Brokers and controllers each reserve the heap: their sum is what must fit."""
    from greenflow_kafka.service import KafkaConfig, local_heap_problem

    gib = 1 << 30
    assert local_heap_problem(KafkaConfig(brokers=3, heap="4g"), 16 * gib) == (
        "heap: 4 JVMs × 4g = 16.0 GiB does not fit in this machine's 16.0 GiB of memory (each "
        "broker and controller JVM reserves its whole heap, -Xms = -Xmx); lower heap (unset, it "
        "is 512m) or use fewer brokers"
    )
    assert local_heap_problem(KafkaConfig(brokers=3, heap="4g"), 17 * gib) is None
    assert local_heap_problem(KafkaConfig(), 1 * gib) is None  # 512m by default
    assert local_heap_problem(KafkaConfig(heap="2048m"), 2 * gib) is not None


@pytest.mark.parametrize("heap", ["lots", "2 g", "1.5g", "2t", ""])
def test_a_heap_that_is_no_jvm_size_is_refused_naming_the_key(heap: str) -> None:
    """heap must read like -Xmx: bytes, or a whole number with k, m or g."""
    from greenflow_kafka.service import KafkaConfig

    with pytest.raises(ValueError, match=r'^heap: expected a JVM heap size such as "512m"'):
        KafkaConfig(heap=heap)


def test_heap_bytes_reads_jvm_sizes() -> None:
    """k, m and g are binary multiples, as the JVM reads them."""
    from greenflow_kafka.service import heap_bytes

    assert [heap_bytes(h) for h in ("1024", "1k", "512m", "2G")] == [1024, 1024, 512 << 20, 2 << 30]


def test_deploy_refuses_the_heap_before_starting_anything(tmp_path: Path) -> None:
    """A run that skipped validate gets the same refusal from deploy, before any jar or JVM."""
    from greenflow.errors import ServiceError
    from greenflow.plugins import Kind, load
    from greenflow.testing import local_inventory, make_deploy_context
    from greenflow_kafka.service import KafkaConfig, KafkaService

    local = load(Kind.PLATFORM, "local", where="test")
    service = KafkaService("kafka", KafkaConfig(heap="100000g"))
    with pytest.raises(ServiceError, match=r"service 'kafka': heap: 100000g does not fit"):
        service.deploy(local(local.Config()), local_inventory(), make_deploy_context(tmp_path))
    assert service.processes() == {}
