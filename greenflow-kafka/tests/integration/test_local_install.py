"""Local Kafka without Kubernetes: wheels of greenflow-core and greenflow-kafka alone, in a
fresh virtual environment, validate and run the local example with no Kubernetes client.

Real parts: the wheels are built from this checkout (hatchling, in pip's isolated build
environment), their dependencies come from the package index as a user's would, and the run
starts a real Kafka broker (the jars cached by the other tests). Nothing is simulated.
"""

from __future__ import annotations

import json
import os
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from greenflow_kafka.distribution import KafkaDistribution

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "local-kafka.toml"

pytestmark = pytest.mark.timeout(900)


def _run(*cmd: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {done.returncode}\n{done.stdout[-3000:]}\n"
        f"{done.stderr[-3000:]}"
    )
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def local_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with the two wheels installed (not editable): its bin directory."""
    work = tmp_path_factory.mktemp("local-only")
    wheels = work / "wheels"
    env_dir = work / "venv"
    # The fresh venv's own pip builds the wheels too: the test session's venv may have been
    # made by uv, without pip.
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    bin_dir = env_dir / "bin"
    for dist in ("greenflow-core", "greenflow-kafka"):
        _run(
            bin_dir / "python",
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            wheels,
            ROOT / dist,
        )
    built = sorted(wheels.glob("*.whl"))
    assert {w.name.split("-")[0] for w in built} == {"greenflow_core", "greenflow_kafka"}
    _run(bin_dir / "python", "-m", "pip", "install", "--quiet", *built)
    yield bin_dir


def test_no_kubernetes_module_is_installed(local_only: Path) -> None:
    """Neither the kubernetes client nor greenflow-kubernetes comes with core and kafka."""
    for module in ("kubernetes", "greenflow_kubernetes"):
        done = subprocess.run(
            [local_only / "python", "-c", f"import {module}"], capture_output=True, text=True
        )
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, module
    installed = _run(local_only / "python", "-m", "pip", "list", "--format=freeze").lower()
    assert "kubernetes" not in installed


def test_the_local_example_validates_and_lists_its_plugins(local_only: Path) -> None:
    """`greenflow validate` accepts examples/local-kafka.toml and `plugins` lists kafka."""
    out = _run(local_only / "greenflow", "validate", "--offline", EXAMPLE)
    assert "ok — 12 runs" in out
    plugins = _run(local_only / "greenflow", "plugins", "--json")
    assert '"kafka"' in plugins and '"kafka-ingest"' in plugins
    assert '"kubernetes"' not in plugins


def test_a_kubernetes_plan_says_what_to_install(local_only: Path, tmp_path: Path) -> None:
    """A plan on the kubernetes platform names the package that provides it."""
    plan = tmp_path / "kube.toml"
    plan.write_text(
        EXAMPLE.read_text().replace('type = "local"', 'type = "kubernetes"'), encoding="utf-8"
    )
    done = subprocess.run(
        [local_only / "greenflow", "validate", "--offline", plan], capture_output=True, text=True
    )
    assert done.returncode != 0
    message = done.stdout + done.stderr
    assert 'type "kubernetes" is not installed' in message
    assert "pip install greenflow-kubernetes" in message
    assert "Traceback" not in message


def test_the_local_example_runs_a_real_broker(
    local_only: Path, tmp_path: Path, kafka_distribution: KafkaDistribution
) -> None:
    """One point of the local example runs end to end: a finished run with messages and
    energy, from the wheels alone."""
    plan = tmp_path / "one-point.toml"
    text = EXAMPLE.read_text()
    for old, new in (
        ("repetitions = 3", "repetitions = 1"),
        ('baseline = "10s"', 'baseline = "2s"'),
        ("load = [1000, 5000]", "load = 1000"),
        ("message_size = [100, 1024]", "message_size = 100"),
        ('warmup = "3s"', 'warmup = "1s"'),
        ('duration = "10s"', 'duration = "3s"'),
    ):
        assert old in text, old
        text = text.replace(old, new)
    plan.write_text(text, encoding="utf-8")
    env = {**os.environ, "PATH": f"{local_only}{os.pathsep}{os.environ['PATH']}"}
    # The output directory (greenflow-output) is relative to where greenflow runs.
    _run(local_only / "greenflow", "run", plan, env=env, cwd=tmp_path)
    runs = json.loads(
        _run(local_only / "greenflow", "results", tmp_path / "greenflow-output", "--json", env=env)
    )
    assert [r["status"] for r in runs] == ["finished"]
    (run,) = runs
    assert run["units"] > 0 and run["unit"] == "message"
    host_energy = [
        v for k, v in run.items() if k.startswith("energy_joules[host/") and "." not in k
    ]
    assert host_energy and host_energy[0] > 0
