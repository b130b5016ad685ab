"""Getting Apache Kafka: the jars and a Java 17+ runtime to run them.

Two routes, tried in this order:

1. ``KAFKA_HOME`` points at an unpacked Apache Kafka distribution: its ``libs/*`` is the
   class path, nothing is downloaded.
2. Otherwise the jars are resolved from Maven Central with ``mvn`` and the POM shipped in
   ``greenflow_kafka/data/kafka-pom.xml``, into a per-version cache
   ``$XDG_CACHE_HOME/greenflow/kafka/<version>/libs`` (default ``~/.cache``). A marker file
   written only after a complete resolution makes a half-finished download start over, and
   an ``fcntl`` lock keeps two processes from resolving the same version at once.

The Prometheus JMX exporter's java agent (broker metrics, docs/broker-metrics.md) is
obtained the same way: :func:`resolve_jmx_exporter` resolves the pinned
:data:`JMX_EXPORTER_VERSION` with ``mvn`` and ``greenflow_kafka/data/jmx-exporter-pom.xml``
into ``$XDG_CACHE_HOME/greenflow/jmx-exporter/<version>``, under a lock, and accepts the
jar only with the pinned SHA-256 (which also makes a half-finished download harmless).

Only Kafka 4.x is supported: the cluster formats KRaft storage and configures log4j2, both
of which differ in 3.x.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import attrs

from greenflow_kafka.errors import KafkaSetupError

#: The Kafka version used when none is asked for. Maven Central serves kafka_2.13 and
#: kafka-tools at this version (kafka-tools 4.4.0 is not there).
DEFAULT_KAFKA_VERSION = "4.3.1"
#: Kafka 4 brokers and tools need Java 17 (clients would run on 11; we run everything).
MIN_JAVA_MAJOR = 17

_JAVA_HINT = "apt-get install openjdk-17-jdk-headless"
_MVN_HINT = "apt-get install maven"
_MARKER = "resolved.json"
_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[.-][0-9A-Za-z]+)*$")
#: The Prometheus JMX exporter's java agent, pinned: 0.20.0's jar (577 KB) fits in a
#: Kubernetes ConfigMap (1 MiB), which is how it reaches broker pods (docs/broker-metrics.md);
#: 1.0.1's is 2.8 MB.
JMX_EXPORTER_VERSION = "0.20.0"
#: SHA-256 of ``jmx_prometheus_javaagent-0.20.0.jar`` as Maven Central serves it.
JMX_EXPORTER_SHA256 = "8b67ed40485d475648c36d11d21464b484406f85faf912b3363f71a6a7861320"
JMX_EXPORTER_JAR = f"jmx_prometheus_javaagent-{JMX_EXPORTER_VERSION}.jar"
#: The agent's rules for Kafka brokers and controllers (package data).
JMX_EXPORTER_CONFIG = "jmx-exporter-kafka.yaml"
#: A path to the agent jar to use instead of resolving it (offline hosts); it must be the
#: pinned version (its SHA-256 is checked).
JMX_EXPORTER_JAR_ENV = "GREENFLOW_JMX_EXPORTER_JAR"
_KAFKA_JAR_RE = re.compile(r"^kafka_2\.1[0-9]-(?P<version>[0-9][^/]*?)\.jar$")


@attrs.frozen
class JavaRuntime:
    """A ``java`` executable and the version it reported."""

    path: Path
    version: str
    major: int


def heap_bytes(heap: str) -> int:
    """A JVM heap size (``"512m"``, ``"2g"``, ``"1024k"``, bytes) in bytes; ValueError
    saying how to write one."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", heap.strip())
    if m is None:
        msg = f'{heap!r} is not a JVM heap size (write e.g. "512m" or "2g")'
        raise ValueError(msg)
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2).lower()]


def _as_tuple(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


@attrs.frozen
class KafkaDistribution:
    """Everything needed to start Kafka's JVM main classes on this host.

    ``classpath`` holds class-path entries (a ``libs/*`` wildcard, which the JVM expands);
    ``home`` is ``KAFKA_HOME`` or the version's cache directory.
    """

    version: str
    classpath: tuple[str, ...] = attrs.field(converter=_as_tuple)
    java: Path
    java_version: str
    source: Literal["KAFKA_HOME", "maven"]
    home: Path
    libs_dir: Path

    @property
    def classpath_str(self) -> str:
        return os.pathsep.join(self.classpath)

    def java_command(
        self,
        main_class: str,
        args: Sequence[str] = (),
        *,
        heap: str | None = None,
        jvm_options: Sequence[str] = (),
        log4j2_config: Path | None = None,
    ) -> list[str]:
        """The argv that runs ``main_class`` with this distribution's class path."""
        cmd = [str(self.java)]
        if heap is not None:
            # Equal -Xms and -Xmx as kafka-server-start.sh does: no heap resizing mid-run,
            # so memory (and GC work) does not drift during a measurement.
            cmd += [f"-Xms{heap}", f"-Xmx{heap}"]
        cmd += ["-Djava.awt.headless=true", *jvm_options]
        if log4j2_config is not None:
            cmd.append(f"-Dlog4j2.configurationFile={log4j2_config}")
        cmd += ["-cp", self.classpath_str, main_class, *args]
        return cmd

    def describe(self) -> dict[str, Any]:
        """Facts for the provenance record."""
        return {
            "kafka_version": self.version,
            "source": self.source,
            "home": str(self.home),
            "java": str(self.java),
            "java_version": self.java_version,
        }


@attrs.frozen
class JmxExporter:
    """The Prometheus JMX exporter's java agent and the rules it runs with."""

    version: str
    jar: Path
    config: Path
    sha256: str

    def agent_option(self, port: int, host: str | None = None) -> str:
        """The JVM option that serves ``/metrics`` on ``host:port`` (every address without
        ``host``), read by the agent as ``-javaagent:<jar>=[host:]port:<config>``."""
        if host is None:
            bind = str(port)
        else:
            bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return f"-javaagent:{self.jar}={bind}:{self.config}"

    def describe(self) -> dict[str, Any]:
        """Facts for the provenance record."""
        return {
            "exporter": "jmx_prometheus_javaagent",
            "version": self.version,
            "jar": str(self.jar),
            "sha256": self.sha256,
            "config": str(self.config),
        }


def package_data(name: str) -> Path:
    """Path of a file shipped in ``greenflow_kafka/data``.

    Long-running JVMs read these files by path, so a zipped install (which would need a
    temporary copy) is not supported; wheels are always installed unpacked.
    """
    path = Path(str(resources.files("greenflow_kafka") / "data" / name))
    if not path.is_file():
        msg = f"greenflow-kafka is missing its data file {path}; reinstall greenflow-kafka"
        raise KafkaSetupError(msg)
    return path


def find_java(env: Mapping[str, str] | None = None) -> JavaRuntime:
    """Find Java 17+ through ``JAVA_HOME``, else ``PATH``; raise ``KafkaSetupError`` if absent or old."""
    env = os.environ if env is None else env
    java_home = env.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if not os.access(candidate, os.X_OK):
            msg = (
                f"JAVA_HOME={java_home} has no executable bin/java. Point JAVA_HOME at a "
                f"Java {MIN_JAVA_MAJOR}+ installation (e.g. /usr/lib/jvm/java-17-openjdk-amd64) "
                f"or unset it to use the java on PATH; to install one: {_JAVA_HINT}"
            )
            raise KafkaSetupError(msg)
        where = f"JAVA_HOME={java_home}"
    else:
        found = shutil.which("java", path=env.get("PATH", os.defpath))
        if found is None:
            msg = (
                f"Kafka needs Java {MIN_JAVA_MAJOR} or newer and no java was found "
                f"(JAVA_HOME is unset and there is no java on PATH). Install one, e.g. "
                f"`{_JAVA_HINT}`, or set JAVA_HOME."
            )
            raise KafkaSetupError(msg)
        candidate = Path(found)
        where = "PATH"
    try:
        proc = subprocess.run(
            [str(candidate), "-version"], capture_output=True, text=True, timeout=60, env=dict(env)
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        msg = f"could not run {candidate} -version (found through {where}): {exc}; install Java with `{_JAVA_HINT}`"
        raise KafkaSetupError(msg) from exc
    output = proc.stderr + proc.stdout  # java -version prints to stderr
    version, major = _parse_java_version(output)
    if major is None:
        first = output.strip().splitlines()[:1]
        msg = (
            f"could not read the Java version from `{candidate} -version` (found through "
            f"{where}); it printed {first!r}. Install Java {MIN_JAVA_MAJOR}+: `{_JAVA_HINT}`"
        )
        raise KafkaSetupError(msg)
    if major < MIN_JAVA_MAJOR:
        msg = (
            f"Java {version} at {candidate} (found through {where}) is too old: Kafka 4 needs "
            f"Java {MIN_JAVA_MAJOR} or newer. Install it with `{_JAVA_HINT}` and set "
            f"JAVA_HOME to it (or put it first on PATH)."
        )
        raise KafkaSetupError(msg)
    return JavaRuntime(path=candidate, version=version, major=major)


def _parse_java_version(text: str) -> tuple[str, int | None]:
    # `openjdk version "17.0.15" 2025-04-15`, `java version "1.8.0_392"`, `openjdk version "21-ea"`
    m = re.search(r'version "([^"]+)"', text)
    if m is None:
        return "", None
    version = m.group(1)
    parts = re.findall(r"\d+", version)
    if not parts:
        return version, None
    major = int(parts[0])
    if major == 1 and len(parts) > 1:  # pre-Java-9 scheme: 1.8 is Java 8
        major = int(parts[1])
    return version, major


def find_mvn(env: Mapping[str, str] | None = None) -> Path:
    """Find ``mvn`` on PATH; raise ``KafkaSetupError`` naming how to get it or avoid it."""
    env = os.environ if env is None else env
    found = shutil.which("mvn", path=env.get("PATH", os.defpath))
    if found is None:
        msg = (
            "resolving Kafka's jars from Maven Central needs Maven and no `mvn` is on PATH. "
            f"Install it (`{_MVN_HINT}`), or set KAFKA_HOME to an unpacked Apache Kafka "
            "distribution (the directory holding libs/)."
        )
        raise KafkaSetupError(msg)
    return Path(found)


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/greenflow/kafka`` (``~/.cache/greenflow/kafka`` by default)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "greenflow" / "kafka"


def resolve_distribution(
    version: str | None = None,
    *,
    cache_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    mvn_timeout_s: float = 1200.0,
    lock_timeout_s: float = 1500.0,
) -> KafkaDistribution:
    """Return a runnable Kafka: from ``KAFKA_HOME`` if set, else from the Maven cache.

    ``version`` defaults to :data:`DEFAULT_KAFKA_VERSION` (or whatever ``KAFKA_HOME``
    holds); asking for a version other than ``KAFKA_HOME``'s is an error rather than a
    silent substitution. Resolving is done once per version and cache; later calls only
    check the marker file (no ``mvn`` needed then).
    """
    env = os.environ if env is None else env
    java = find_java(env)
    kafka_home = env.get("KAFKA_HOME")
    if kafka_home:
        return _from_kafka_home(Path(kafka_home), version, java)
    version = version or DEFAULT_KAFKA_VERSION
    _check_version(version, where="requested")
    root = (cache_dir or default_cache_dir(env)) / version
    cached = _cached(root, version, java)
    if cached is not None:
        return cached
    root.mkdir(parents=True, exist_ok=True)
    with locked(root / ".lock", timeout_s=lock_timeout_s, what=f"Kafka {version} into {root}"):
        # Another process may have finished while we waited for the lock.
        cached = _cached(root, version, java)
        if cached is not None:
            return cached
        _resolve_with_maven(root, version, java, env, timeout_s=mvn_timeout_s)
        cached = _cached(root, version, java)
    if cached is None:  # pragma: no cover - _resolve_with_maven verified the jars
        msg = f"resolved Kafka {version} into {root} but its marker is missing or stale"
        raise KafkaSetupError(msg)
    return cached


def resolve_jmx_exporter(
    *,
    cache_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    mvn_timeout_s: float = 600.0,
    lock_timeout_s: float = 900.0,
) -> JmxExporter:
    """The pinned JMX exporter agent: ``$GREENFLOW_JMX_EXPORTER_JAR`` if set, else from the
    cache, else resolved from Maven Central with ``mvn`` (once; later calls only hash the
    cached jar). ``cache_dir`` is the parent of the version directories (default
    ``$XDG_CACHE_HOME/greenflow/jmx-exporter``). Raises ``KafkaSetupError`` with the fix."""
    env = os.environ if env is None else env
    config = package_data(JMX_EXPORTER_CONFIG)
    given = env.get(JMX_EXPORTER_JAR_ENV)
    if given:
        jar = Path(given)
        if not _has_sha256(jar, JMX_EXPORTER_SHA256):
            msg = (
                f"{JMX_EXPORTER_JAR_ENV}={given} is not {JMX_EXPORTER_JAR} (missing, or its "
                f"SHA-256 is not {JMX_EXPORTER_SHA256}); point it at that jar from Maven "
                "Central, or unset it to resolve the jar with Maven"
            )
            raise KafkaSetupError(msg)
        return JmxExporter(JMX_EXPORTER_VERSION, jar, config, JMX_EXPORTER_SHA256)
    base = cache_dir or default_cache_dir(env).parent / "jmx-exporter"
    root = base / JMX_EXPORTER_VERSION
    jar = root / JMX_EXPORTER_JAR
    if not _has_sha256(jar, JMX_EXPORTER_SHA256):
        root.mkdir(parents=True, exist_ok=True)
        what = f"the JMX exporter {JMX_EXPORTER_VERSION} into {root}"
        with locked(root / ".lock", timeout_s=lock_timeout_s, what=what):
            # Another process may have finished while we waited for the lock.
            if not _has_sha256(jar, JMX_EXPORTER_SHA256):
                _resolve_jmx_exporter_with_maven(root, env, timeout_s=mvn_timeout_s)
    return JmxExporter(JMX_EXPORTER_VERSION, jar, config, JMX_EXPORTER_SHA256)


def _has_sha256(path: Path, expected: str) -> bool:
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest() == expected
    except OSError:
        return False


def _resolve_jmx_exporter_with_maven(
    root: Path, env: Mapping[str, str], *, timeout_s: float
) -> None:
    hint = (
        "set metrics = false on the kafka service, or set "
        f"{JMX_EXPORTER_JAR_ENV} to a downloaded {JMX_EXPORTER_JAR}"
    )
    try:
        mvn = find_mvn(env)
    except KafkaSetupError as exc:
        msg = f"the kafka service's broker metrics need the JMX exporter agent: {exc} Or {hint}."
        raise KafkaSetupError(msg) from None
    java = find_java(env)
    pom = root / "pom.xml"
    shutil.copyfile(package_data("jmx-exporter-pom.xml"), pom)
    partial = root / "partial"
    shutil.rmtree(partial, ignore_errors=True)
    mvn_env = dict(env)
    mvn_env.setdefault("JAVA_HOME", str(java.path.resolve().parent.parent))
    cmd = [
        str(mvn),
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DexcludeTransitive=true",
        f"-DoutputDirectory={partial}",
    ]
    output, code = run_logged(cmd, root / "mvn.log", mvn_env, cwd=root, timeout_s=timeout_s)
    got = partial / JMX_EXPORTER_JAR
    if code != 0 or not _has_sha256(got, JMX_EXPORTER_SHA256):
        if code is None:
            why = f"timed out after {timeout_s:g}s"
        elif code != 0:
            why = f"exited with {code}"
        else:
            why = f"gave a jar whose SHA-256 is not the pinned {JMX_EXPORTER_SHA256}"
        tail = "\n".join(output.rstrip().splitlines()[-20:])
        msg = (
            f"resolving {JMX_EXPORTER_JAR} from Maven Central failed: `{' '.join(cmd)}` "
            f"{why}. Last lines of its output (all of it in {root / 'mvn.log'}):\n{tail}\n"
            f"Check network access to Maven Central, or {hint}."
        )
        raise KafkaSetupError(msg)
    got.replace(root / JMX_EXPORTER_JAR)
    shutil.rmtree(partial, ignore_errors=True)


def run_logged(
    cmd: Sequence[str], log: Path, env: Mapping[str, str], *, cwd: Path, timeout_s: float
) -> tuple[str, int | None]:
    """Run ``cmd``, write its output to ``log``; (output, exit code or None on timeout)."""
    try:
        proc = subprocess.run(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=dict(env),
            timeout=timeout_s,
            cwd=cwd,
        )
        output, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        output = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        code = None
    log.write_text(output)
    return output, code


def _check_version(version: str, *, where: str) -> None:
    m = _VERSION_RE.match(version)
    if m is None:
        msg = f"Kafka version {version!r} ({where}) is not of the form X.Y.Z, e.g. {DEFAULT_KAFKA_VERSION!r}"
        raise KafkaSetupError(msg)
    if int(m.group(1)) < 4:
        msg = (
            f"Kafka {version} ({where}) is not supported: greenflow-kafka runs Kafka 4.x "
            f"(KRaft storage format, log4j2). Use e.g. {DEFAULT_KAFKA_VERSION!r}."
        )
        raise KafkaSetupError(msg)


def _from_kafka_home(home: Path, version: str | None, java: JavaRuntime) -> KafkaDistribution:
    libs = home / "libs"
    found = sorted(
        m.group("version")
        for p in libs.glob("kafka_2.1*.jar")
        if (m := _KAFKA_JAR_RE.match(p.name))
    )
    found = [v for v in found if not v.endswith(("-sources", "-test", "-javadoc"))]
    if not found:
        msg = (
            f"KAFKA_HOME={home} does not look like an Apache Kafka distribution: no "
            f"libs/kafka_2.13-<version>.jar in {libs}. Point KAFKA_HOME at the unpacked "
            "kafka_2.13-X.Y.Z directory, or unset it to resolve the jars with Maven."
        )
        raise KafkaSetupError(msg)
    home_version = found[-1]
    _check_version(home_version, where=f"KAFKA_HOME={home}")
    if version is not None and version != home_version:
        msg = (
            f"Kafka {version} was asked for but KAFKA_HOME={home} holds {home_version}; "
            "ask for that version, or unset KAFKA_HOME to resolve the other one with Maven."
        )
        raise KafkaSetupError(msg)
    return KafkaDistribution(
        version=home_version,
        classpath=(str(libs / "*"),),
        java=java.path,
        java_version=java.version,
        source="KAFKA_HOME",
        home=home,
        libs_dir=libs,
    )


def _cached(root: Path, version: str, java: JavaRuntime) -> KafkaDistribution | None:
    """The cached distribution if its marker exists and every jar it lists is there."""
    libs = root / "libs"
    try:
        marker = json.loads((root / _MARKER).read_text())
    except (OSError, ValueError):
        return None
    jars = marker.get("jars") if isinstance(marker, dict) else None
    if marker.get("version") != version or not isinstance(jars, list) or not jars:
        return None
    if not all((libs / str(jar)).is_file() for jar in jars):
        return None
    return KafkaDistribution(
        version=version,
        classpath=(str(libs / "*"),),
        java=java.path,
        java_version=java.version,
        source="maven",
        home=root,
        libs_dir=libs,
    )


@contextmanager
def locked(path: Path, *, timeout_s: float, what: str) -> Iterator[None]:
    with path.open("a+") as fh:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    msg = (
                        f"waited {timeout_s:g}s for another process resolving {what} "
                        f"(lock {path}); if no such process runs, delete the lock file"
                    )
                    raise KafkaSetupError(msg) from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _resolve_with_maven(
    root: Path, version: str, java: JavaRuntime, env: Mapping[str, str], *, timeout_s: float
) -> None:
    mvn = find_mvn(env)
    (root / _MARKER).unlink(missing_ok=True)
    pom = root / "pom.xml"
    shutil.copyfile(package_data("kafka-pom.xml"), pom)
    partial = root / "libs.partial"
    shutil.rmtree(partial, ignore_errors=True)
    mvn_env = dict(env)
    # mvn picks its JVM from JAVA_HOME; make it the Java we checked rather than whatever
    # `mvn` finds first.
    mvn_env.setdefault("JAVA_HOME", str(java.path.resolve().parent.parent))
    cmd = [
        str(mvn),
        "-q",
        "-B",
        "-f",
        str(pom),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}",
    ]
    log = root / "mvn.log"
    try:
        proc = subprocess.run(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=mvn_env,
            timeout=timeout_s,
            cwd=root,
        )
        output, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        output = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        code = None
    log.write_text(output)
    tail = "\n".join(output.rstrip().splitlines()[-20:])
    if code != 0:
        why = f"timed out after {timeout_s:g}s" if code is None else f"exited with {code}"
        msg = (
            f"resolving Kafka {version} from Maven Central failed: `{' '.join(cmd)}` {why}. "
            f"Last lines of its output (all of it in {log}):\n{tail}\n"
            "Check network access to Maven Central and that the version exists, or set "
            "KAFKA_HOME to an unpacked Apache Kafka distribution."
        )
        raise KafkaSetupError(msg)
    jars = sorted(p.name for p in partial.glob("*.jar"))
    if f"kafka_2.13-{version}.jar" not in jars:
        msg = f"mvn succeeded but {partial} lacks kafka_2.13-{version}.jar; it holds {jars[:10]}... (see {log})"
        raise KafkaSetupError(msg)
    libs = root / "libs"
    shutil.rmtree(libs, ignore_errors=True)
    partial.rename(libs)
    # Written last: its presence is what says the download is complete.
    marker = {"version": version, "jars": jars, "resolved_at": time.time()}
    tmp = root / (_MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=1))
    tmp.replace(root / _MARKER)


__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "JMX_EXPORTER_JAR_ENV",
    "JMX_EXPORTER_SHA256",
    "JMX_EXPORTER_VERSION",
    "MIN_JAVA_MAJOR",
    "JavaRuntime",
    "JmxExporter",
    "KafkaDistribution",
    "default_cache_dir",
    "find_java",
    "find_mvn",
    "locked",
    "package_data",
    "resolve_distribution",
    "resolve_jmx_exporter",
    "run_logged",
]
