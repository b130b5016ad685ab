"""The k3s platform's [platform] settings, checked when the plan is read: each key's
default, what it accepts, and a message naming the key for what it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from greenflow.plan.converter import converter
from greenflow.plan.structure import PlanErrors, structure
from greenflow_k3s import DEFAULT_INSTALL_SCRIPT, DEFAULT_K3S_VERSION, HostEntry, K3sConfig
from greenflow_kubernetes import KubernetesConfig

PLAN = Path("plan.toml")
INVENTORY = {"inventory": "hosts.yaml"}


def _config(**raw: Any) -> K3sConfig:
    """``raw`` as the plan's [platform] table (less its type) through the core's converter."""
    config: K3sConfig = structure(raw, K3sConfig, path=PLAN, section="platform")
    return config


def _refused(**raw: Any) -> str:
    with pytest.raises(PlanErrors) as info:
        _config(**raw)
    problems = info.value.problems
    assert len(problems) == 1, problems
    return problems[0]


def test_defaults_pin_a_k3s_release_and_disable_traefik_and_servicelb() -> None:
    """With only an inventory: pinned version, official script, no air-gap, traefik and
    servicelb disabled, no taints, uninstall at release, 5 min to be Ready."""
    config = _config(**INVENTORY)
    assert config.k3s_version == DEFAULT_K3S_VERSION == "v1.33.4+k3s1"
    assert config.install_script == DEFAULT_INSTALL_SCRIPT == "https://get.k3s.io"
    assert (config.k3s_binary, config.airgap_images) == (None, ())
    assert config.disable == ("traefik", "servicelb")
    assert (config.node_ip, config.taints) == ({}, {})
    assert (config.server_args, config.agent_args) == ((), ())
    assert config.keep is False
    assert config.ready_timeout == 300.0
    assert config.connect_timeout == 10.0
    assert (config.gateway, config.ssh_config) == (None, None)
    assert (config.namespace, config.timeout_s) == (None, 300.0)


def test_a_whole_platform_table_is_read() -> None:
    """Every key at once, as a plan would write them."""
    config = _config(
        hosts=[
            {"name": "c1", "role": "control", "address": "10.0.0.1", "user": "root"},
            {"name": "b1", "role": "broker", "port": 2222, "key": "id_ed25519", "become": True},
        ],
        gateway="jdoe@access.grid5000.fr",
        ssh_config="ssh_config",
        connect_timeout="20s",
        k3s_version="v1.32.7+k3s1",
        install_script="files/install.sh",
        k3s_binary="files/k3s",
        airgap_images=["files/k3s-airgap-images-amd64.tar.zst", "files/kafka.tar"],
        disable=["traefik"],
        node_ip={"c1": "192.168.0.1", "b1": "fd00::2"},
        server_args=["--kubelet-arg=max-pods=200", "--cluster-init"],
        agent_args=["--kubelet-arg=eviction-hard=memory.available<100Mi"],
        taints={"broker": "NoSchedule"},
        keep=True,
        ready_timeout="10m",
        namespace="energy",
        timeout_s=120,
    )
    assert config.hosts[1] == HostEntry(
        name="b1", role="broker", port=2222, key="id_ed25519", become=True
    )
    assert config.ready_timeout == 600.0
    assert config.connect_timeout == 20.0
    assert config.node_ip == {"c1": "192.168.0.1", "b1": "fd00::2"}


def test_the_config_survives_the_round_trip_greenflow_down_makes() -> None:
    """The recorded config (unstructured to JSON) structures back to the same value."""
    config = _config(
        hosts=[{"name": "c1", "role": "control", "port": 22}],
        taints={"broker": "NoExecute"},
        ready_timeout="1m30s",
    )
    assert converter.structure(converter.unstructure(config), K3sConfig) == config


# -- inventory or hosts ------------------------------------------------------------------


def test_neither_inventory_nor_hosts_is_refused_saying_how_to_give_them() -> None:
    """Without hosts there is no cluster: the message shows both ways to give them."""
    assert _refused() == (
        'plan.toml [platform] hosts: no hosts; set inventory = "hosts.yaml" or list the hosts '
        'as [[platform.hosts]] tables (name, role = "control", "broker" or "worker")'
    )


def test_both_inventory_and_hosts_are_refused() -> None:
    """One source of hosts, not two."""
    message = _refused(inventory="hosts.yaml", hosts=[{"name": "c1", "role": "control"}])
    assert message == (
        "plan.toml [platform] hosts: the plan gives both inventory and hosts; keep one of them"
    )


@pytest.mark.parametrize("value", ["", "   ", "a\nb"])
def test_an_inventory_that_is_no_path_is_refused(value: str) -> None:
    """inventory is a path."""
    assert _refused(inventory=value).startswith(
        "plan.toml [platform] inventory: expected a path on this machine"
    )


def test_inline_hosts_without_a_control_host_are_refused() -> None:
    """The role checks of hosts.yaml apply to hosts in the plan, when the plan is read."""
    message = _refused(hosts=[{"name": "w1", "role": "worker"}])
    assert message == (
        "plan.toml [platform] hosts: no control host; make exactly one host the control host "
        '(give it role = "control")'
    )


def test_inline_hosts_with_two_control_hosts_or_a_host_in_two_roles_are_refused() -> None:
    """Two control hosts (no HA) and one name in two roles are both reported."""
    message = _refused(
        hosts=[
            {"name": "c1", "role": "control"},
            {"name": "c2", "role": "control"},
            {"name": "c2", "role": "worker"},
        ]
    )
    assert message.startswith("plan.toml [platform] hosts: host 'c2' is in two roles")
    assert "also hosts: 2 control hosts (c1, c2)" in message


@pytest.mark.parametrize(
    ("role", "hint"),
    [
        ("controll", ' (did you mean "control"?)'),
        ("node", ' (did you mean "worker"?)'),
        ("control_plane", ' (did you mean "control"?)'),
        ("etcd", ""),
    ],
)
def test_an_inline_hosts_unknown_role_is_refused_with_the_valid_ones(role: str, hint: str) -> None:
    """role is control, broker or worker; hosts.yaml's words point to GreenFlow's."""
    message = _refused(hosts=[{"name": "c1", "role": role}])
    assert message == (
        f"plan.toml [platform] hosts[0]: role: unknown role {role!r}{hint}; "
        "valid: control, broker, worker"
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"port": 0}, "port: expected a port number 1–65535, got 0"),
        ({"port": 65536}, "port: expected a port number 1–65535, got 65536"),
        ({"port": "22"}, 'expected an integer, got "22"'),
        ({"user": "a b"}, "user: expected a user name, got 'a b'"),
        ({"address": "a b"}, "address: expected a host name or an IP address, got 'a b'"),
        ({"become": "yes"}, 'expected true or false, got "yes"'),
        ({"key": ""}, "key: expected a path on this machine, got ''"),
    ],
)
def test_an_inline_hosts_bad_setting_is_refused_naming_the_entry_and_key(
    entry: dict[str, Any], expected: str
) -> None:
    """Each [[platform.hosts]] setting is checked; the message names the entry."""
    message = _refused(hosts=[{"name": "c1", "role": "control", **entry}])
    assert message.startswith("plan.toml [platform] hosts[0]")
    assert message.endswith(expected)


def test_an_inline_host_named_as_no_node_can_be_is_refused() -> None:
    """A host's name becomes its node's name."""
    message = _refused(hosts=[{"name": "Control_1", "role": "control"}])
    assert message.startswith(
        "plan.toml [platform] hosts[0]: name: 'Control_1' cannot name a Kubernetes node"
    )


def test_an_unknown_key_in_an_inline_host_is_refused() -> None:
    """A misspelt host setting is refused, not ignored."""
    message = _refused(hosts=[{"name": "c1", "role": "control", "adress": "10.0.0.1"}])
    assert message.startswith("plan.toml [platform] hosts[0]: unknown key(s): adress")


def test_an_unknown_platform_key_is_refused_listing_the_valid_ones() -> None:
    """The core converter's rule: unknown keys are errors."""
    message = _refused(**INVENTORY, keep_cluster=True)
    assert message.startswith("plan.toml [platform]: unknown key(s): keep_cluster; valid keys: ")
    valid = message.partition("valid keys: ")[2].split(", ")
    assert {"keep", "ready_timeout", "inventory", "k3s_version"} <= set(valid)


# -- each key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["access.grid5000.fr", "jdoe@access.grid5000.fr:22", "me@[2001:db8::1]:2222"]
)
def test_a_gateway_in_the_user_at_host_port_form_is_accepted(value: str) -> None:
    """gateway: [user@]host[:port]."""
    assert _config(**INVENTORY, gateway=value).gateway == value


@pytest.mark.parametrize("value", ["jdoe@", "host:port", "ssh://host"])
def test_a_malformed_gateway_is_refused_showing_the_form(value: str) -> None:
    """Anything else is refused with the form."""
    assert _refused(**INVENTORY, gateway=value).startswith(
        'plan.toml [platform] gateway: expected "user@host:port"'
    )


@pytest.mark.parametrize("value", ["v1.33.4+k3s1", "v1.31.12+k3s2", "v1.34.0-rc1+k3s1"])
def test_a_k3s_release_tag_is_accepted(value: str) -> None:
    """k3s_version is a release tag."""
    assert _config(**INVENTORY, k3s_version=value).k3s_version == value


@pytest.mark.parametrize("value", ["stable", "latest", "1.33.4", "v1.33.4", "v1.33.4+k3s"])
def test_a_channel_or_a_bare_kubernetes_version_is_refused_as_k3s_version(value: str) -> None:
    """Channels move under a plan; a Kubernetes version without +k3sN is no k3s release."""
    assert _refused(**INVENTORY, k3s_version=value).startswith(
        'plan.toml [platform] k3s_version: expected a k3s release tag like "v1.33.4+k3s1"'
    )


@pytest.mark.parametrize(
    "value",
    ["https://get.k3s.io", "http://mirror.lab/install.sh", "install.sh", "/opt/k3s/install.sh"],
)
def test_the_install_script_is_a_url_or_a_local_path(value: str) -> None:
    """install_script: an http(s) URL the hosts fetch, or a file here to upload."""
    assert _config(**INVENTORY, install_script=value).install_script == value


@pytest.mark.parametrize("value", ["ftp://mirror/install.sh", "https://", ""])
def test_an_install_script_that_is_neither_url_nor_path_is_refused(value: str) -> None:
    """Other URL schemes, a URL without host and an empty string are refused."""
    assert _refused(**INVENTORY, install_script=value).startswith(
        "plan.toml [platform] install_script: expected "
    )


@pytest.mark.parametrize("key", ["k3s_binary", "ssh_config"])
def test_local_file_keys_refuse_what_is_no_path(key: str) -> None:
    """k3s_binary and ssh_config are paths on this machine."""
    assert _refused(**INVENTORY, **{key: ""}).startswith(
        f"plan.toml [platform] {key}: expected a path on this machine"
    )
    assert _refused(**INVENTORY, **{key: 3}).startswith(
        f"plan.toml [platform] {key}: expected a string, got 3"
    )


def test_airgap_images_are_a_list_of_paths_with_distinct_names() -> None:
    """Each archive lands in k3s' images directory under its own name: a bare string, an
    empty path and two archives of one file name are refused, saying what to write."""
    assert _refused(**INVENTORY, airgap_images="images.tar").startswith(
        'plan.toml [platform] airgap_images: expected a list, e.g. ["images.tar"]'
    )
    assert _refused(**INVENTORY, airgap_images=[""]).startswith(
        "plan.toml [platform] airgap_images: expected a path on this machine"
    )
    refused = _refused(**INVENTORY, airgap_images=["a/images.tar", "b/images.tar"])
    assert "'a/images.tar' and 'b/images.tar' have the same file name" in refused


def test_disable_accepts_k3s_components_and_an_empty_list() -> None:
    """disable lists packaged components; [] keeps them all."""
    assert _config(**INVENTORY, disable=[]).disable == ()
    assert _config(**INVENTORY, disable=["metrics-server", "local-storage"]).disable == (
        "metrics-server",
        "local-storage",
    )


def test_disable_as_a_string_is_refused_not_split_into_characters() -> None:
    """disable = "traefik" is a list's mistake: refused with the list it meant."""
    assert _refused(**INVENTORY, disable="traefik") == (
        'plan.toml [platform] disable: expected a list, e.g. ["traefik"], got "traefik"'
    )


def test_an_unknown_component_to_disable_is_refused_with_the_valid_ones() -> None:
    """A misspelt component is refused with the close one and the list."""
    assert _refused(**INVENTORY, disable=["trafik"]) == (
        "plan.toml [platform] disable: 'trafik' is no k3s component (did you mean "
        '"traefik"?); k3s can disable coredns, servicelb, traefik, local-storage, '
        "metrics-server, runtimes"
    )


def test_a_node_ip_that_is_no_ip_address_is_refused_naming_the_host() -> None:
    """node_ip values are IP addresses."""
    assert _refused(**INVENTORY, node_ip={"c1": "c1.lab"}) == (
        "plan.toml [platform] node_ip: host 'c1': expected an IP address, got 'c1.lab'"
    )


@pytest.mark.parametrize("key", ["server_args", "agent_args"])
def test_extra_k3s_flags_are_each_one_item(key: str) -> None:
    """Flags are "--flag" or "--flag=value"; a value as its own item is refused with the form."""
    assert _config(**INVENTORY, **{key: ["--flannel-iface=eth1"]})
    message = _refused(**INVENTORY, **{key: ["--flannel-iface", "eth1"]})
    assert message == (
        f"plan.toml [platform] {key}: expected k3s {key.split('_')[0]} flags, each one item "
        '"--flag" or "--flag=value" (e.g. "--kubelet-arg=max-pods=200"), got \'eth1\''
    )


@pytest.mark.parametrize(
    ("flag", "why"),
    [
        ("--node-ip=10.0.0.1", "set node_ip"),
        ("--node-label=x=y", "labels follow the host's role"),
        ("--node-taint=x=y:NoSchedule", "set taints"),
        ("--disable=traefik", "set disable"),
        ("--token=abc", "GreenFlow reads the join token from the server"),
        ("--node-name", "the host's name in the inventory is its node name"),
    ],
)
def test_flags_greenflow_sets_itself_are_refused_pointing_to_their_key(flag: str, why: str) -> None:
    """A flag GreenFlow derives from other keys would fight them: refused, saying which."""
    assert _refused(**INVENTORY, server_args=[flag]) == (
        f"plan.toml [platform] server_args: {flag!r} is set by GreenFlow: {why}"
    )


def test_taints_take_a_role_and_an_effect() -> None:
    """taints = { broker = "NoSchedule" }: an effect per role."""
    taints = {"broker": "NoSchedule", "worker": "PreferNoSchedule", "control": "NoExecute"}
    assert _config(**INVENTORY, taints=taints).taints == taints


def test_a_taint_for_an_unknown_role_or_effect_is_refused() -> None:
    """Roles and effects are checked, with the close one."""
    assert _refused(**INVENTORY, taints={"brokers": "NoSchedule"}) == (
        "plan.toml [platform] taints: unknown role 'brokers' (did you mean \"broker\"?); "
        "valid: control, broker, worker"
    )
    assert _refused(**INVENTORY, taints={"broker": "NoSchedul"}) == (
        "plan.toml [platform] taints: broker: expected a taint effect, one of NoSchedule, "
        "PreferNoSchedule, NoExecute, got 'NoSchedul' (did you mean \"NoSchedule\"?)"
    )


def test_keep_is_a_boolean() -> None:
    """keep = "yes" is refused."""
    assert _config(**INVENTORY, keep=True).keep is True
    assert _refused(**INVENTORY, keep="yes") == (
        'plan.toml [platform] keep: expected true or false, got "yes"'
    )


@pytest.mark.parametrize("key", ["ready_timeout", "connect_timeout"])
def test_durations_accept_units_and_refuse_zero_and_words(key: str) -> None:
    """ready_timeout and connect_timeout are durations > 0."""
    assert getattr(_config(**INVENTORY, **{key: "2m"}), key) == 120.0
    assert getattr(_config(**INVENTORY, **{key: 45}), key) == 45.0
    assert _refused(**INVENTORY, **{key: 0}).startswith(
        f"plan.toml [platform] {key}: expected a number > 0"
    )
    assert _refused(**INVENTORY, **{key: "soon"}).startswith(
        f'plan.toml [platform] {key}: expected a duration like "30s"'
    )


# -- what the kubernetes platform receives ----------------------------------------------------


def test_namespace_and_timeout_are_checked_as_the_kubernetes_platform_checks_them() -> None:
    """The kubernetes platform's own rules apply, with the same key names."""
    assert _refused(**INVENTORY, namespace="Team_A").startswith(
        "plan.toml [platform] namespace: expected a namespace name"
    )
    assert _refused(**INVENTORY, timeout_s=0).startswith(
        "plan.toml [platform] timeout_s: expected a number > 0"
    )


def test_the_kubernetes_platform_gets_the_kubeconfig_namespace_and_timeout() -> None:
    """The installed cluster is driven by the kubernetes platform's own config (composition)."""
    config = _config(**INVENTORY, namespace="energy", timeout_s=60)
    assert config.kubernetes("/out/kubeconfig", "k3s") == KubernetesConfig(
        kubeconfig="/out/kubeconfig", context="k3s", namespace="energy", timeout_s=60.0
    )
