"""Sessions for the whole monorepo: ``nox -s lint typecheck tests_core tests_kubernetes
tests_kafka tests_redpanda tests_theodolite tests_kube_node tests_k3s tests_g5k``; ``live_k3s`` and
``live_g5k`` (not in ``tests``) run against your hosts and the real Grid'5000.

Run through ``bash scripts/test`` (which also installs what the tests need from the
system), or directly with ``.venv/bin/nox -s NAME [-- PYTEST ARGS]`` after
``bash scripts/venv``.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import nox

nox.needs_version = ">=2024.10.9"
# uv, installed next to nox by scripts/venv, builds a session's environment in about a
# second from its cache; plain venv + pip is the fallback where uv is missing.
nox.options.default_venv_backend = "uv|venv"
# Keep environments between runs so a warm machine only checks what is installed.
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests"]

ROOT = Path(__file__).parent
CORE = ROOT / "greenflow-core"
KUBERNETES = ROOT / "greenflow-kubernetes"
K3S = ROOT / "greenflow-k3s"
G5K = ROOT / "greenflow-g5k"
THEODOLITE = ROOT / "greenflow-theodolite"
KAFKA = ROOT / "greenflow-kafka"
REDPANDA = ROOT / "greenflow-redpanda"
HELLO = ROOT / "examples" / "greenflow-hello"
#: Every distribution mypy --strict checks, each with its own [tool.mypy].
TYPECHECKED = (CORE, KUBERNETES, K3S, G5K, KAFKA, REDPANDA, THEODOLITE, HELLO)
# Installed for core's tests: a third-party plugin example, a plugin whose entry point
# fails to load (for `plugins --check`) and plugins that misbehave on purpose (runner tests).
CORE_TEST_PLUGINS = (
    HELLO,
    CORE / "tests" / "fixtures" / "broken-plugin",
    CORE / "tests" / "fixtures" / "test-plugins",
)
#: Under CI=true every part the tests need is installed by scripts/setup-system, so a skip
#: means a part did not start and CI would pass without testing it: it fails the session.
#: Except these, whose skip is what a complete environment gives (reason, as a regex).
CI_EXPECTED_SKIPS = (
    # The "pandas missing" error path of `results --parquet`: pandas is installed for tests.
    r"pandas and pyarrow are installed",
)


def _extras(package: Path) -> list[str]:
    with (package / "pyproject.toml").open("rb") as f:
        return list(tomllib.load(f).get("project", {}).get("optional-dependencies", {}))


def _editable(package: Path, *extras: str) -> tuple[str, str]:
    """``-e ./package[extras]``: editable, so a reused environment always runs the current
    source. Without ``extras``, the package's ``testing`` extra when it declares one.

    The monorepo's distributions are not on PyPI: a session installs every one it needs
    from here in one command, so that none is looked up on the index.
    """
    if not extras:
        extras = tuple(e for e in ("testing",) if e in _extras(package))
    spec = f"./{package.relative_to(ROOT)}"
    return "-e", f"{spec}[{','.join(extras)}]" if extras else spec


def _pytest(session: nox.Session, package: Path, *paths: str) -> None:
    """Run a package's tests from its own directory (so its pytest config applies).

    pytest's exit code 5 (no test collected) fails the session: a suite that runs nothing
    is not a pass. Only when pytest arguments were given (``-- -k name``), which go to
    every suite, may one suite select nothing; that is reported and the session goes on.
    """
    ci = os.environ.get("CI") == "true"
    report = Path(tempfile.mkdtemp(prefix="greenflow-junit-")) / f"{package.name}.xml"
    with session.chdir(package):
        try:
            # -ra lists every skip with its reason: a part that could not start must show.
            session.run(
                "pytest",
                "-ra",
                *(["--junitxml", str(report)] if ci else []),
                *paths,
                *session.posargs,
            )
        except nox.command.CommandFailed as exc:
            if exc.return_code != 5:
                raise
            if not session.posargs:
                session.error(
                    f"pytest collected no tests in {package.name}: a test suite that runs "
                    "nothing is a failure here, not a pass."
                )
            session.warn(f"{package.name}: {' '.join(session.posargs)} selected no test there")
    if ci and report.exists():
        unexpected = _unexpected_skips(report)
        if unexpected:
            lines = "\n".join(f"  {name}: {reason}" for name, reason in unexpected)
            session.error(
                f"{package.name}: {len(unexpected)} test(s) skipped under CI, where "
                f"scripts/setup-system installs every part they need:\n{lines}"
            )


def _unexpected_skips(junit_xml: Path) -> list[tuple[str, str]]:
    """(test, reason) of every skip in a JUnit report not matched by CI_EXPECTED_SKIPS."""
    found = []
    for case in ET.parse(junit_xml).iter("testcase"):
        for skipped in case.iter("skipped"):
            reason = skipped.get("message") or skipped.text or ""
            if not any(re.search(p, reason) for p in CI_EXPECTED_SKIPS):
                found.append((f"{case.get('classname')}.{case.get('name')}", reason))
    return found


@nox.session
def tests_core(session: nox.Session) -> None:
    """greenflow-core's unit and integration tests, then the third-party example's."""
    # [dev]: every optional feature, so that its tests run rather than skip (report renders
    # real reports with matplotlib and opens them in Chromium; --parquet writes with pandas).
    session.install(
        *_editable(CORE, "dev"), *(arg for p in CORE_TEST_PLUGINS for arg in _editable(p))
    )
    _pytest(session, CORE)
    # The third-party example runs the contract kit against its own plugins.
    _pytest(session, HELLO)


@nox.session
def tests_kubernetes(session: nox.Session) -> None:
    """greenflow-kubernetes' tests: a real kube-apiserver (built by scripts/kube-apiserver;
    they skip with that command without it) and a real Prometheus for the collector."""
    session.install(*_editable(CORE), *_editable(KUBERNETES))
    _pytest(session, KUBERNETES)


@nox.session
def tests_k3s(session: nox.Session) -> None:
    """greenflow-k3s' tests: the inventory, the platform's settings and SSH (unit), and the
    test hosts — real sshds in network namespaces (scripts/ssh-hosts; root, else skipped);
    kafka and redpanda for the example plan's validation."""
    session.install(
        *_editable(CORE),
        *_editable(KUBERNETES),
        *_editable(K3S),
        *_editable(KAFKA),
        *_editable(REDPANDA),
    )
    _pytest(session, K3S, "--ignore=tests/live")


@nox.session
def live_k3s(session: nox.Session) -> None:
    """The real k3s install script on hosts you name (GREENFLOW_K3S_LIVE_INVENTORY: a
    hosts.yaml), then its removal. Not part of `tests`; docs/k3s.md, "Live test"."""
    session.install(*_editable(CORE), *_editable(KUBERNETES), *_editable(K3S))
    _pytest(session, K3S, "tests/live")


@nox.session
def tests_g5k(session: nox.Session) -> None:
    """greenflow-g5k's tests: its settings (unit), the platform and the kwollect collector
    against the Grid'5000 API emulator through python-grid5000, and end to end on the SSH
    test hosts with the k3s stand-in (root, else skipped); kafka and redpanda for the
    example plan's validation. tests/live is the live_g5k session's."""
    session.install(
        *_editable(CORE),
        *_editable(KUBERNETES),
        *_editable(K3S),
        *_editable(G5K),
        *_editable(KAFKA),
        *_editable(REDPANDA),
    )
    _pytest(session, G5K, "--ignore=tests/live")


@nox.session
def live_g5k(session: nox.Session) -> None:
    """Against the real Grid'5000 API with your credentials (~/.python-grid5000.yaml, or a
    frontend with GREENFLOW_G5K_LIVE=1): reserves one node for 15 min and deletes it. Not
    part of `tests`; docs/g5k.md, "Running the live test"."""
    session.install(*_editable(CORE), *_editable(KUBERNETES), *_editable(K3S), *_editable(G5K))
    session.env["GREENFLOW_G5K_LIVE"] = os.environ.get("GREENFLOW_G5K_LIVE", "1")
    _pytest(session, G5K, "tests/live")


@nox.session
def tests_kafka(session: nox.Session) -> None:
    """greenflow-kafka's tests, against a real Kafka broker (jars resolved with mvn) and a
    real kube-apiserver; the wheel test builds and installs core and kafka alone."""
    session.install(*_editable(CORE), *_editable(KUBERNETES), *_editable(KAFKA))
    _pytest(session, KAFKA)


@nox.session
def tests_redpanda(session: nox.Session) -> None:
    """greenflow-redpanda's tests: manifests against a real kube-apiserver and the local
    platform."""
    session.install(
        *_editable(CORE), *_editable(KUBERNETES), *_editable(KAFKA), *_editable(REDPANDA)
    )
    _pytest(session, REDPANDA)


@nox.session
def tests_theodolite(session: nox.Session) -> None:
    """greenflow-theodolite's tests: settings, the lag-trend SLO, the demand and capacity
    searches and the schema-registry stand-in (unit); the use cases and the generator
    (built with mvn) against a real local Kafka broker, and the workload end to end
    through `greenflow run` (integration)."""
    session.install(
        *_editable(CORE), *_editable(KUBERNETES), *_editable(KAFKA), *_editable(THEODOLITE)
    )
    _pytest(session, THEODOLITE)


@nox.session
def tests_kube_node(session: nox.Session) -> None:
    """GreenFlow end to end on a real single-node Kubernetes cluster started on this
    machine by scripts/kube-node (root; binaries and images built by scripts/setup-system)."""
    session.install(
        *_editable(CORE), *_editable(KUBERNETES), *_editable(KAFKA), *_editable(THEODOLITE)
    )
    session.env["GREENFLOW_KUBE_NODE_TESTS"] = "1"
    # The Kubernetes layer alone (Prometheus, Scaphandre, the collector), then Kafka on it,
    # then Theodolite's UC2; each suite starts and stops the node (~15 s warm).
    _pytest(session, KUBERNETES, "tests/real_node")
    _pytest(session, KAFKA, "tests/real_node")
    _pytest(session, THEODOLITE, "tests/real_node")


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """Every package's tests (pytest arguments after -- go to each)."""
    for name in TEST_SESSIONS:
        session.notify(name, posargs=session.posargs)


#: scripts/test (the README's and CI's command) names the same sessions: keep both in step.
TEST_SESSIONS = (
    "tests_core",
    "tests_kubernetes",
    "tests_k3s",
    "tests_g5k",
    "tests_kafka",
    "tests_redpanda",
    "tests_theodolite",
    "tests_kube_node",
)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over every package, with the repository's ruff.toml: lint rules and formatting;
    then the import rules (scripts/check-imports): no cycle, no private name across modules."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", *(session.posargs or ["."]))
    session.run("ruff", "format", "--check", *(session.posargs or ["."]))
    session.run("python", "scripts/check-imports")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every distribution (each configured in its own pyproject.toml)."""
    # Every extra, so that code behind optional dependencies (report, pandas) is checked.
    session.install(
        *_editable(CORE, "dev"),
        *_editable(KUBERNETES),
        *_editable(K3S),
        *_editable(G5K),
        *_editable(KAFKA),
        *_editable(REDPANDA),
        *_editable(THEODOLITE),
        *_editable(HELLO),
        "mypy>=1.13",
        # greenflow-k3s' PyYAML and paramiko are typed by these stub packages.
        "types-PyYAML>=6",
        "types-paramiko>=3",
    )
    for package in TYPECHECKED:
        with session.chdir(package):
            session.run("mypy", *session.posargs)
