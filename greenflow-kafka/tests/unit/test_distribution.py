"""Finding Java and mvn, reading KAFKA_HOME, and the resolution cache, with real executables."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from greenflow_kafka.distribution import (
    DEFAULT_KAFKA_VERSION,
    _parse_java_version,
    default_cache_dir,
    find_java,
    find_mvn,
    package_data,
    resolve_distribution,
)
from greenflow_kafka.errors import KafkaSetupError

REAL_JAVA = shutil.which("java")


def _fake_java(tmp_path: Path, version_line: str) -> Path:
    """A `java` that prints `version_line` on stderr, like `java -version` does."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir(exist_ok=True)
    java = bin_dir / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return bin_dir


def _path_with_only_java(tmp_path: Path) -> str:
    """A PATH holding the real java and nothing else (no mvn)."""
    if REAL_JAVA is None:
        pytest.skip("no java on PATH to build an environment without mvn")
    only = tmp_path / "onlyjava"
    only.mkdir()
    (only / "java").symlink_to(Path(REAL_JAVA).resolve())
    return str(only)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('openjdk version "17.0.15" 2025-04-15', ("17.0.15", 17)),
        ('java version "1.8.0_392"', ("1.8.0_392", 8)),
        ('openjdk version "21-ea" 2023-09-19', ("21-ea", 21)),
        ('openjdk version "11" 2018-09-25', ("11", 11)),
        ("no version here", ("", None)),
    ],
)
def test_java_version_parsing(text: str, expected: tuple[str, int | None]) -> None:
    """Both the pre-9 (1.8) and the modern version schemes give the major version."""
    assert _parse_java_version(text) == expected


def test_no_java_anywhere_names_the_package(tmp_path: Path) -> None:
    """Without JAVA_HOME and without java on PATH the error says which package to install."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KafkaSetupError) as info:
        find_java({"PATH": str(empty)})
    assert "no java was found" in str(info.value)
    assert "apt-get install openjdk-17-jdk-headless" in str(info.value)


def test_java_home_without_java_is_named(tmp_path: Path) -> None:
    """A JAVA_HOME that holds no bin/java is reported as such, not silently skipped."""
    with pytest.raises(KafkaSetupError, match=r"JAVA_HOME=.* has no executable bin/java"):
        find_java({"JAVA_HOME": str(tmp_path), "PATH": os.defpath})


def test_old_java_is_refused(tmp_path: Path) -> None:
    """Java 8 on PATH is refused with the version found and what to install."""
    bin_dir = _fake_java(tmp_path, 'java version "1.8.0_392"')
    with pytest.raises(KafkaSetupError) as info:
        find_java({"PATH": str(bin_dir)})
    msg = str(info.value)
    assert "Java 1.8.0_392" in msg and "too old" in msg and "openjdk-17-jdk-headless" in msg


def test_old_java_via_java_home_is_refused(tmp_path: Path) -> None:
    """JAVA_HOME wins over PATH, and an old one there is refused too."""
    bin_dir = _fake_java(tmp_path, 'openjdk version "11.0.2" 2019-01-15')
    jh = tmp_path / "jh"
    (jh / "bin").mkdir(parents=True)
    (jh / "bin" / "java").symlink_to(bin_dir / "java")
    with pytest.raises(
        KafkaSetupError, match=r"Java 11\.0\.2 .* \(found through JAVA_HOME=.*too old"
    ):
        find_java({"JAVA_HOME": str(jh), "PATH": ""})


@pytest.mark.skipif(REAL_JAVA is None, reason="no java on PATH")
def test_real_java_is_found() -> None:
    """The java on this machine is found and is 17 or newer (what the integration tests need)."""
    java = find_java({"PATH": os.environ.get("PATH", os.defpath)})
    assert java.major >= 17 and java.path.name == "java"


def test_no_mvn_names_the_package_and_kafka_home(tmp_path: Path) -> None:
    """Without mvn the error says to install maven or to set KAFKA_HOME."""
    with pytest.raises(KafkaSetupError) as info:
        find_mvn({"PATH": str(tmp_path)})
    assert "apt-get install maven" in str(info.value) and "KAFKA_HOME" in str(info.value)


def test_cold_cache_without_mvn_fails_with_the_hint(tmp_path: Path) -> None:
    """A version not yet cached needs mvn; without it resolution fails with the install hint."""
    env = {"PATH": _path_with_only_java(tmp_path), "HOME": str(tmp_path)}
    with pytest.raises(KafkaSetupError, match="apt-get install maven"):
        resolve_distribution(cache_dir=tmp_path / "cache", env=env)


def test_half_finished_download_is_not_trusted(tmp_path: Path) -> None:
    """Jars without the completion marker (an interrupted mvn) are resolved again, not used."""
    env = {"PATH": _path_with_only_java(tmp_path), "HOME": str(tmp_path)}
    libs = tmp_path / "cache" / DEFAULT_KAFKA_VERSION / "libs"
    libs.mkdir(parents=True)
    (libs / f"kafka_2.13-{DEFAULT_KAFKA_VERSION}.jar").write_bytes(b"")
    with pytest.raises(KafkaSetupError, match="apt-get install maven"):
        resolve_distribution(cache_dir=tmp_path / "cache", env=env)


def test_complete_cache_needs_no_mvn(tmp_path: Path) -> None:
    """With the marker and every jar it lists present, resolution uses the cache without mvn."""
    env = {"PATH": _path_with_only_java(tmp_path), "HOME": str(tmp_path)}
    root = tmp_path / "cache" / DEFAULT_KAFKA_VERSION
    (root / "libs").mkdir(parents=True)
    jar = f"kafka_2.13-{DEFAULT_KAFKA_VERSION}.jar"
    (root / "libs" / jar).write_bytes(b"")
    (root / "resolved.json").write_text(
        json.dumps({"version": DEFAULT_KAFKA_VERSION, "jars": [jar]})
    )
    dist = resolve_distribution(cache_dir=tmp_path / "cache", env=env)
    assert dist.source == "maven" and dist.version == DEFAULT_KAFKA_VERSION
    assert dist.classpath == (str(root / "libs" / "*"),)
    # A jar listed in the marker but gone makes the cache incomplete again.
    (root / "libs" / jar).unlink()
    with pytest.raises(KafkaSetupError, match="apt-get install maven"):
        resolve_distribution(cache_dir=tmp_path / "cache", env=env)


def test_kafka_home_is_used_as_is(tmp_path: Path) -> None:
    """KAFKA_HOME's libs/* is the class path and its version is read from the kafka jar."""
    home = tmp_path / "kafka_2.13-4.1.0"
    (home / "libs").mkdir(parents=True)
    (home / "libs" / "kafka_2.13-4.1.0.jar").write_bytes(b"")
    env = {"PATH": _path_with_only_java(tmp_path), "KAFKA_HOME": str(home)}
    dist = resolve_distribution(env=env)
    assert (dist.source, dist.version, dist.classpath) == (
        "KAFKA_HOME",
        "4.1.0",
        (str(home / "libs" / "*"),),
    )
    with pytest.raises(
        KafkaSetupError, match=r"Kafka 4\.3\.1 was asked for but KAFKA_HOME=.* holds 4\.1\.0"
    ):
        resolve_distribution("4.3.1", env=env)


@pytest.mark.parametrize(
    ("jar", "match"),
    [
        (None, "does not look like an Apache Kafka distribution"),
        ("kafka_2.13-3.9.0.jar", r"Kafka 3\.9\.0 .* not supported"),
    ],
)
def test_bad_kafka_home_is_explained(tmp_path: Path, jar: str | None, match: str) -> None:
    """A KAFKA_HOME without a kafka jar, or with Kafka 3.x, is refused with the reason."""
    home = tmp_path / "kh"
    (home / "libs").mkdir(parents=True)
    if jar:
        (home / "libs" / jar).write_bytes(b"")
    env = {"PATH": _path_with_only_java(tmp_path), "KAFKA_HOME": str(home)}
    with pytest.raises(KafkaSetupError, match=match):
        resolve_distribution(env=env)


def test_bad_version_strings_are_refused(tmp_path: Path) -> None:
    """Versions are checked before any download: shape, and 4.x only."""
    env = {"PATH": _path_with_only_java(tmp_path), "HOME": str(tmp_path)}
    with pytest.raises(KafkaSetupError, match="not of the form"):
        resolve_distribution("../../etc", cache_dir=tmp_path, env=env)
    with pytest.raises(KafkaSetupError, match="not supported"):
        resolve_distribution("3.9.1", cache_dir=tmp_path, env=env)


def test_cache_dir_follows_xdg() -> None:
    """The cache lives under XDG_CACHE_HOME, else ~/.cache."""
    assert default_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/greenflow/kafka")
    assert default_cache_dir({"HOME": "/home/u"}) == Path("/home/u/.cache/greenflow/kafka")


def test_pom_and_log_configs_ship_as_package_data() -> None:
    """The POM takes the version as a property and the log4j2 configs are there."""
    pom = package_data("kafka-pom.xml").read_text()
    assert "${kafka.version}" in pom and "<artifactId>kafka-tools</artifactId>" in pom
    assert "log4j-slf4j-impl" in pom
    assert package_data("log4j2-broker.properties").is_file()
    assert package_data("log4j2-tools.properties").is_file()
