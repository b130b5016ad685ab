"""Theodolite's use cases UC1–UC4 on Kafka Streams and its load generator, built from source.

GreenFlow reimplements them from Theodolite's documented dataflows (docs/theodolite.md),
in Java, in ``data/apps`` (package ``io.greenflow.theodolite``: ``uc1``…``uc4``, ``loadgen``,
``common``; each main class's javadoc gives its environment and output format):

* :data:`UC_MAIN` — the streams applications, configured from the environment with
  Theodolite's names (``KAFKA_BOOTSTRAP_SERVERS``, ``SCHEMA_REGISTRY_URL``,
  ``NUM_STREAM_THREADS``, ``COMMIT_INTERVAL_MS``, ``CACHE_MAX_BYTES_BUFFERING``,
  ``APPLICATION_ID``, ``STATE_DIR``…); each prints ``greenflow-theodolite-app-started uc=N``
  once running and exits 0 on SIGTERM.
* :data:`GENERATOR_MAIN` — the load generator (``NUM_SENSORS``, ``PERIOD_MS``, ``VALUE``,
  ``THREADS``, ``INSTANCES``/``INSTANCE_INDEX``…), sending ``ActivePowerRecord`` in the
  schema registry's wire format (hand-written Avro binary, no Avro or Confluent library).
* :data:`REGISTRY_MAIN` — the schema registry stand-in in GreenFlow's test images, and
  :data:`TOPICS_MAIN` — topic creation, offset and lag sampling and clean-up as a Job of the
  Kafka target's tools image (only kafka-clients needed), both for Kubernetes.

:func:`resolve_apps` builds them once per source and Kafka version with ``mvn`` into
``$XDG_CACHE_HOME/greenflow/theodolite/<digest>/``: the apps' jar, and ``libs/`` with
kafka-streams and the run-time dependencies the Kafka distribution lacks (rocksdbjni), under
a file lock. They run on the Kafka distribution's class path plus those
(:func:`app_command`), so kafka-streams must be the distribution's version (its
kafka-clients).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import attrs

from greenflow_kafka import (
    DEFAULT_KAFKA_VERSION,
    KafkaDistribution,
    KafkaSetupError,
    locked,
    package_data,
    run_logged,
)

_PACKAGE = "io.greenflow.theodolite"
#: The main class of each use case's Kafka Streams application.
UC_MAIN: dict[str, str] = {
    "uc1": f"{_PACKAGE}.uc1.Uc1Application",
    "uc2": f"{_PACKAGE}.uc2.Uc2Application",
    "uc3": f"{_PACKAGE}.uc3.Uc3Application",
    "uc4": f"{_PACKAGE}.uc4.Uc4Application",
}
#: The load generator's main class.
GENERATOR_MAIN = f"{_PACKAGE}.loadgen.LoadGenerator"
#: The schema registry stand-in of the Kubernetes images (locally: :mod:`.registry`).
REGISTRY_MAIN = f"{_PACKAGE}.registry.SchemaRegistryStandIn"
#: A run's topics and offsets from inside a cluster (``prepare``/``clean``; kube.py).
TOPICS_MAIN = f"{_PACKAGE}.control.TopicsAndLag"
#: The Flink jobs (``flink/pom.xml``), by use case: a local MiniCluster in one JVM.
FLINK_MAIN: dict[str, str] = {"uc1": f"{_PACKAGE}.flink.uc1.Uc1FlinkJob"}
#: What Flink's runtime reflects into on Java 17+ (its own start scripts pass the same).
FLINK_JVM_OPTIONS = tuple(
    f"--add-opens=java.base/{p}=ALL-UNNAMED"
    for p in ("java.lang", "java.util", "java.util.concurrent", "java.io", "java.net", "java.nio")
)
APPS_JAR = "greenflow-theodolite-apps.jar"
FLINK_JAR = "greenflow-theodolite-flink.jar"
#: Per engine: its POM in data/apps, the jar it builds, and a lib its build must have copied.
_ENGINE_BUILDS = {
    "kstreams": ("pom.xml", APPS_JAR, "kafka-streams-"),
    "flink": ("flink/pom.xml", FLINK_JAR, "flink-runtime-"),
}
LIBS = "libs"
#: Written last into a build's directory: its presence says the build is complete.
MARKER = "built.json"
#: System property tagging the JVMs started with :func:`app_command` (its value: a name).
PROCESS_MARKER = "-Dgreenflow.theodolite.process="

_JDK_HINT = "apt-get install openjdk-17-jdk-headless"


@attrs.frozen
class AppsBuild:
    """A complete build: the apps' jar and the directory of the jars they need besides the
    Kafka distribution's (kafka-streams, rocksdbjni), for one Kafka version."""

    jar: Path
    libs: Path
    kafka_version: str = DEFAULT_KAFKA_VERSION
    #: ``kstreams`` (runs on the Kafka distribution's class path plus this build's) or
    #: ``flink`` (its own class path only: Flink and the kafka-clients its connector wants).
    engine: str = "kstreams"

    @property
    def classpath(self) -> tuple[str, ...]:
        """This build's class-path entries (``libs/*`` is a JVM wildcard)."""
        return (str(self.jar), str(self.libs / "*"))


# -- the sources -------------------------------------------------------------------------------


def _source_files() -> list[tuple[str, bytes]]:
    root = resources.files("greenflow_theodolite") / "data" / "apps"
    found: list[tuple[str, bytes]] = []

    def walk(node: Traversable, prefix: str) -> None:
        for child in sorted(node.iterdir(), key=lambda c: c.name):
            name = f"{prefix}{child.name}"
            if child.is_dir():
                if child.name != "target":  # a stray local build
                    walk(child, f"{name}/")
            elif child.name.endswith((".java", ".xml")):
                found.append((name, child.read_bytes()))

    if root.is_dir():
        walk(root, "")
    if "pom.xml" not in {name for name, _ in found} or not any(
        name.endswith(".java") for name, _ in found
    ):
        msg = "greenflow-theodolite is missing its apps' source (data/apps); reinstall it"
        raise KafkaSetupError(msg)
    return found


def source_digest(kafka_version: str = DEFAULT_KAFKA_VERSION, engine: str = "kstreams") -> str:
    """A digest of the apps' sources and POMs, the Kafka version and the engine: the cache
    key of their build."""
    h = hashlib.sha256(f"kafka={kafka_version}\0engine={engine}\0".encode())
    for name, data in _source_files():
        h.update(name.encode() + b"\0" + data + b"\0")
    return h.hexdigest()[:16]


# -- building ----------------------------------------------------------------------------------


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/greenflow/theodolite`` (``~/.cache/greenflow/theodolite`` by default)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "greenflow" / "theodolite"


def resolve_apps(
    *,
    kafka_version: str | None = None,
    cache_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    mvn_timeout_s: float = 900.0,
    lock_timeout_s: float = 1200.0,
    engine: str = "kstreams",
) -> AppsBuild:
    """The apps' build: from the cache, else built with ``mvn`` (once per source; later calls
    only check the marker). ``kafka_version`` is kafka-streams' (default
    :data:`~greenflow_kafka.DEFAULT_KAFKA_VERSION`): the version of the distribution the apps
    will run with. ``cache_dir`` is the parent of the digest directories (default
    :func:`default_cache_dir`). Building needs Maven, a JDK and Maven Central (the first build
    downloads kafka-streams and rocksdbjni, ~75 MB; Flink's, ``engine="flink"``, ~85 MB);
    raises ``KafkaSetupError`` with the fix."""
    env = os.environ if env is None else env
    version = kafka_version or DEFAULT_KAFKA_VERSION
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        msg = f"kafka_version {version!r} is not of the form X.Y.Z, e.g. {DEFAULT_KAFKA_VERSION!r}"
        raise KafkaSetupError(msg)
    if engine not in _ENGINE_BUILDS:
        msg = f"engine {engine!r}: expected one of {', '.join(_ENGINE_BUILDS)}"
        raise KafkaSetupError(msg)
    root = (cache_dir or default_cache_dir(env)) / source_digest(version, engine)
    cached = _cached(root)
    if cached is not None:
        return cached
    root.mkdir(parents=True, exist_ok=True)
    with locked(root / ".lock", timeout_s=lock_timeout_s, what=f"Theodolite's apps into {root}"):
        cached = _cached(root)  # another process may have built them meanwhile
        if cached is None:
            _build(root, version, env, engine, timeout_s=mvn_timeout_s)
            cached = _cached(root)
    if cached is None:  # pragma: no cover - _build checked what it wrote
        msg = f"built Theodolite's apps into {root} but its marker is missing or stale"
        raise KafkaSetupError(msg)
    return cached


def _cached(root: Path) -> AppsBuild | None:
    """The build in ``root`` if its marker exists and every file it lists is there."""
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None
    libs = marker.get("libs") if isinstance(marker, dict) else None
    version = marker.get("kafka_version") if isinstance(marker, dict) else None
    engine = marker.get("engine", "kstreams") if isinstance(marker, dict) else None
    if not isinstance(libs, list) or not libs or not isinstance(version, str):
        return None
    if engine not in _ENGINE_BUILDS:
        return None
    jar = root / _ENGINE_BUILDS[engine][1]
    build = AppsBuild(jar=jar, libs=root / LIBS, kafka_version=version, engine=engine)
    if not build.jar.is_file() or not all((build.libs / str(n)).is_file() for n in libs):
        return None
    return build


def _build(
    root: Path, version: str, env: Mapping[str, str], engine: str, *, timeout_s: float
) -> None:
    pom, jar_name, needed = _ENGINE_BUILDS[engine]
    mvn = shutil.which("mvn", path=env.get("PATH", os.defpath))
    if mvn is None:
        msg = (
            "Theodolite's apps are built from their source with Maven (once) and no `mvn` is "
            f"on PATH. Install it (`apt-get install maven`) and a JDK (`{_JDK_HINT}`)."
        )
        raise KafkaSetupError(msg)
    mvn_env = dict(env)
    if not mvn_env.get("JAVA_HOME"):
        javac = shutil.which("javac", path=env.get("PATH", os.defpath))
        if javac is None:
            msg = (
                "building Theodolite's apps needs a JDK (javac), not only a Java runtime: "
                f"`{_JDK_HINT}`, or set JAVA_HOME to a JDK 17+"
            )
            raise KafkaSetupError(msg)
        mvn_env["JAVA_HOME"] = str(Path(javac).resolve().parent.parent)
    (root / MARKER).unlink(missing_ok=True)
    build = root / "build"
    shutil.rmtree(build, ignore_errors=True)
    for name, data in _source_files():
        path = build / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(build / pom),
        f"-Dkafka.version={version}",
        "compiler:compile",
        "jar:jar",
        "dependency:copy-dependencies",
    ]
    output, code = run_logged(cmd, root / "mvn.log", mvn_env, cwd=build, timeout_s=timeout_s)
    target = (build / pom).parent / "target"
    built_jar, built_libs = target / jar_name, target / LIBS
    libs = sorted(p.name for p in built_libs.glob("*.jar")) if built_libs.is_dir() else []
    if code != 0 or not built_jar.is_file() or not any(n.startswith(needed) for n in libs):
        if code is None:
            why = f"timed out after {timeout_s:g}s"
        elif code != 0:
            why = f"exited with {code}"
        else:
            why = f"left no {jar_name} or no {needed}* jar in {built_libs}"
        tail = "\n".join(output.rstrip().splitlines()[-20:])
        hint = (
            f"a JDK is needed, not only a JRE (`{_JDK_HINT}`, and JAVA_HOME pointing at it)"
            if "no compiler" in output.lower()
            else f"check network access to Maven Central and that kafka-streams {version} exists"
        )
        msg = (
            f"building Theodolite's apps failed: `{' '.join(cmd)}` {why}. Last lines of its "
            f"output (all of it in {root / 'mvn.log'}):\n{tail}\nFix: {hint}."
        )
        raise KafkaSetupError(msg)
    shutil.rmtree(root / LIBS, ignore_errors=True)
    built_libs.rename(root / LIBS)
    tmp = root / (jar_name + ".tmp")
    shutil.copyfile(built_jar, tmp)
    tmp.replace(root / jar_name)
    marker = {
        "digest": root.name,
        "kafka_version": version,
        "engine": engine,
        "jar": jar_name,
        "libs": libs,
        "built_at": time.time(),
    }
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=1))
    tmp.replace(root / MARKER)  # last: its presence says the build is complete
    shutil.rmtree(build, ignore_errors=True)


# -- running -----------------------------------------------------------------------------------


def app_command(
    distribution: KafkaDistribution,
    build: AppsBuild,
    main_class: str,
    *,
    heap: str = "512m",
    name: str | None = None,
    jvm_options: Sequence[str] = (),
) -> list[str]:
    """The argv running ``main_class`` (:data:`UC_MAIN`, :data:`GENERATOR_MAIN`) on the
    distribution's class path plus the build's, logging warnings and errors only, to stderr
    (Kafka's tools' log4j2 configuration). Its settings come from the environment (the main
    classes' javadoc). ``name`` tags the JVM with :data:`PROCESS_MARKER`. Raises
    ``KafkaSetupError`` when the build is for another Kafka version than the distribution
    (kafka-streams needs its own kafka-clients). A Flink build runs on its own class path
    (the distribution gives only its Java), with :data:`FLINK_JVM_OPTIONS`."""
    if build.engine == "flink":
        flink = attrs.evolve(distribution, classpath=build.classpath)
        options = [*([f"{PROCESS_MARKER}{name}"] if name else []), *FLINK_JVM_OPTIONS]
        return flink.java_command(main_class, [], heap=heap, jvm_options=[*options, *jvm_options])
    if build.kafka_version != distribution.version:
        msg = (
            f"Theodolite's apps were built with kafka-streams {build.kafka_version} and the "
            f"Kafka distribution is {distribution.version}; build them for it: "
            f"resolve_apps(kafka_version={distribution.version!r})"
        )
        raise KafkaSetupError(msg)
    dist = attrs.evolve(distribution, classpath=(*distribution.classpath, *build.classpath))
    options = [*([f"{PROCESS_MARKER}{name}"] if name else []), *jvm_options]
    return dist.java_command(
        main_class,
        [],
        heap=heap,
        jvm_options=options,
        log4j2_config=package_data("log4j2-tools.properties"),
    )


__all__ = [
    "APPS_JAR",
    "FLINK_JAR",
    "FLINK_MAIN",
    "GENERATOR_MAIN",
    "LIBS",
    "PROCESS_MARKER",
    "REGISTRY_MAIN",
    "TOPICS_MAIN",
    "UC_MAIN",
    "AppsBuild",
    "app_command",
    "default_cache_dir",
    "resolve_apps",
    "source_digest",
]
