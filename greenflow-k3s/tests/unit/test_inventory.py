"""The inventory: hosts.yaml as the original GreenFlow wrote it, hosts written in the plan,
every bad input a one-line message naming the file, the host and the key."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from greenflow.errors import PlanError
from greenflow_k3s import (
    Gateway,
    Host,
    Inventory,
    InventoryError,
    K3sConfig,
    load_inventory,
    node_labels,
    node_taints,
    parse_hosts_yaml,
    registration_labels,
)
from greenflow_k3s.config import HostEntry
from greenflow_kubernetes import DEFAULT_ROLE_LABELS, carries

#: The inventory of issue 12, as the original GreenFlow's README shows it.
ISSUE_HOSTS_YAML = """\
all:
  children:
    broker:
      hosts:
        paravance-68.rennes.grid5000.fr:
          kubernetes_role: broker
    control:
      hosts:
        paravance-14.rennes.grid5000.fr:
          kubernetes_role: control_plane
    worker:
      hosts:
        paravance-16.rennes.grid5000.fr:
          kubernetes_role: node
"""


def _parse(text: str, base: Path = Path("/nonexistent")) -> list[Host]:
    return parse_hosts_yaml(dedent(text), "hosts.yaml", base)


def _problems(text: str, base: Path = Path("/nonexistent")) -> list[str]:
    with pytest.raises(InventoryError) as info:
        _parse(text, base)
    for line in info.value.problems:
        assert line.startswith("hosts.yaml: ")
        assert "\n" not in line
    return info.value.problems


def _one_problem(text: str, base: Path = Path("/nonexistent")) -> str:
    problems = _problems(text, base)
    assert len(problems) == 1, problems
    return problems[0]


def _control_and(extra: str) -> str:
    """A valid control group plus ``extra`` (more groups), as hosts.yaml text."""
    return "all:\n  children:\n    control:\n      hosts:\n        c1:\n" + extra


# -- the issue's hosts.yaml ---------------------------------------------------------------


def test_the_issues_hosts_yaml_gives_one_host_per_role() -> None:
    """The hosts.yaml of the issue reads as one control, one broker and one worker host."""
    hosts = _parse(ISSUE_HOSTS_YAML)
    assert [(h.name, h.role) for h in hosts] == [
        ("paravance-14.rennes.grid5000.fr", "control"),
        ("paravance-68.rennes.grid5000.fr", "broker"),
        ("paravance-16.rennes.grid5000.fr", "worker"),
    ]


def test_a_host_without_ansible_variables_is_reached_by_its_name_with_ssh_defaults() -> None:
    """No ansible_* variable: the address is the name; user, port and key come from SSH."""
    host = _parse(ISSUE_HOSTS_YAML)[0]
    assert host == Host(
        name="paravance-14.rennes.grid5000.fr",
        address="paravance-14.rennes.grid5000.fr",
        role="control",
        user=None,
        port=None,
        key=None,
        become=False,
    )


def test_the_seeds_larger_inventory_keeps_file_order_within_each_role() -> None:
    """Hosts are listed control first, then brokers, then workers, each in file order."""
    hosts = _parse(
        """\
        all:
          children:
            broker:
              hosts:
                b-68: {kubernetes_role: broker}
                b-8: {kubernetes_role: broker}
                b-9: {kubernetes_role: broker}
            control:
              hosts:
                c-14: {kubernetes_role: control_plane}
            worker:
              hosts:
                w-16: {kubernetes_role: node}
                w-25: {kubernetes_role: node}
        """
    )
    assert [h.name for h in hosts] == ["c-14", "b-68", "b-8", "b-9", "w-16", "w-25"]


def test_ansible_variables_set_address_user_port_key_and_become(tmp_path: Path) -> None:
    """ansible_host, _user, _port, _ssh_private_key_file (relative to hosts.yaml) and
    _become are read onto the host."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id_node").write_text("key")
    [host] = _parse(
        """\
        all:
          children:
            control:
              hosts:
                node-1:
                  kubernetes_role: control_plane
                  ansible_host: 10.0.0.5
                  ansible_user: debian
                  ansible_port: 2222
                  ansible_ssh_private_key_file: keys/id_node
                  ansible_become: true
        """,
        tmp_path,
    )
    assert host == Host(
        name="node-1",
        address="10.0.0.5",
        role="control",
        user="debian",
        port=2222,
        key=tmp_path / "keys" / "id_node",
        become=True,
    )


def test_group_and_all_vars_apply_to_their_hosts_and_the_host_wins() -> None:
    """all.vars, then the group's vars, then the host's own variables, as in Ansible."""
    hosts = _parse(
        """\
        all:
          vars:
            ansible_user: root
            ansible_port: 2200
          children:
            control:
              hosts:
                c1:
            worker:
              vars:
                ansible_become: true
                ansible_user: debian
              hosts:
                w1:
                w2:
                  ansible_user: admin
        """
    )
    assert [(h.name, h.user, h.port, h.become) for h in hosts] == [
        ("c1", "root", 2200, False),
        ("w1", "debian", 2200, True),
        ("w2", "admin", 2200, True),
    ]


def test_kubernetes_role_may_be_left_out_the_group_says_the_role() -> None:
    """A host without kubernetes_role takes its group's role."""
    hosts = _parse(_control_and("    broker:\n      hosts:\n        b1:\n"))
    assert [(h.name, h.role) for h in hosts] == [("c1", "control"), ("b1", "broker")]


def test_an_empty_group_is_no_host() -> None:
    """A group with no hosts (null, or hosts: null) adds none."""
    hosts = _parse(_control_and("    broker:\n    worker:\n      hosts:\n"))
    assert [h.name for h in hosts] == ["c1"]


def test_a_key_path_with_a_tilde_is_under_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ansible_ssh_private_key_file: ~/... is expanded as a shell would."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_text("key")
    text = _control_and("").replace(
        "c1:\n", "c1:\n          ansible_ssh_private_key_file: ~/.ssh/id_ed25519\n"
    )
    [host] = _parse(text)
    assert host.key == tmp_path / ".ssh" / "id_ed25519"


# -- bad hosts.yaml ----------------------------------------------------------------------


def test_malformed_yaml_is_refused_with_its_line() -> None:
    """A YAML syntax error names the file and the line and column where it is."""
    message = _one_problem("all:\n  children:\n    control:\n      hosts: [c1\n    broker:\n")
    assert message.startswith("hosts.yaml: not valid YAML at line 5, column ")
    assert "check the indentation" in message


def test_a_tab_indented_file_is_malformed_yaml_with_its_line() -> None:
    """Tabs, a classic of hand-written YAML, are reported with the line they are on."""
    message = _one_problem("all:\n  children:\n\tcontrol:\n")
    assert message.startswith("hosts.yaml: not valid YAML at line 3")


def test_a_host_written_twice_in_one_group_is_refused_not_silently_merged() -> None:
    """PyYAML keeps the last of two equal keys; the inventory refuses them, with both lines."""
    message = _one_problem(_control_and("    worker:\n      hosts:\n        w1:\n        w1:\n"))
    assert message == (
        "hosts.yaml: line 9: 'w1' is written twice in one mapping (first at line 8); remove one"
    )


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("- c1\n- w1\n", "found list"),
        ("children:\n  control:\n", "found ['children']"),
        ("all: {}\nother: {}\n", "found ['all', 'other']"),
    ],
)
def test_a_file_not_in_the_ansible_shape_is_refused_showing_the_shape(
    text: str, found: str
) -> None:
    """Without a single top-level 'all', the message says what it found and the shape."""
    message = _one_problem(text)
    assert message.startswith(f"hosts.yaml: expected one top-level key 'all', {found}; ")
    assert "all: children: <control|broker|worker>: hosts: <name>:" in message


def test_an_empty_file_is_refused_showing_the_shape() -> None:
    """An empty hosts.yaml says so and shows the shape."""
    assert _one_problem("").startswith("hosts.yaml: the file is empty; expected the Ansible")


def test_all_without_children_is_refused() -> None:
    """'all' must have children, one group per role."""
    message = _one_problem("all:\n  vars: {}\n")
    assert message.startswith("hosts.yaml: all.children must map each role")


def test_hosts_directly_under_all_are_refused_they_have_no_role() -> None:
    """all.hosts has no group, so no role: the message says to move them into one."""
    message = _one_problem(_control_and("").replace("all:\n", "all:\n  hosts:\n    x1:\n"))
    assert message.startswith("hosts.yaml: all.hosts: hosts directly under 'all' have no role")


@pytest.mark.parametrize(
    ("group", "hint"),
    [
        ("workers", ' (did you mean "worker"?)'),
        ("control_plane", ' (did you mean "control"?)'),
        ("node", ' (did you mean "worker"?)'),
        ("monitoring", ""),
    ],
)
def test_an_unknown_group_is_refused_with_the_valid_ones(group: str, hint: str) -> None:
    """A group that is no role is refused, suggesting the role that was probably meant."""
    message = _one_problem(_control_and(f"    {group}:\n      hosts:\n        x1:\n"))
    assert message == (
        f"hosts.yaml: all.children.{group}: unknown group {group!r}{hint}; "
        "the groups are control, broker and worker"
    )


@pytest.mark.parametrize(
    ("role", "hint"),
    [
        ("nodes", ' (did you mean "node"?)'),
        ("worker", ' (did you mean "node"?)'),
        ("master", ' (did you mean "control_plane"?)'),
        ("etcd", ""),
    ],
)
def test_an_unknown_kubernetes_role_is_refused_with_the_valid_ones(role: str, hint: str) -> None:
    """kubernetes_role is control_plane, broker or node; the message lists them."""
    text = _control_and(
        f"    worker:\n      hosts:\n        w1:\n          kubernetes_role: {role}\n"
    )
    assert _one_problem(text) == (
        f"hosts.yaml: host 'w1': kubernetes_role: unknown role {role!r}{hint}; "
        "valid: control_plane, broker, node"
    )


def test_a_kubernetes_role_that_contradicts_the_group_is_refused() -> None:
    """A host in group broker that says kubernetes_role: node has two roles: refused."""
    text = _control_and("    broker:\n      hosts:\n        b1:\n          kubernetes_role: node\n")
    assert _one_problem(text) == (
        "hosts.yaml: host 'b1': kubernetes_role: 'node' is the worker role but the host is in "
        "group 'broker'; a host has one role: move it to all.children.worker or write "
        "kubernetes_role: broker"
    )


def test_a_host_in_two_groups_is_refused_naming_both_roles() -> None:
    """The same host under broker and worker is refused: a host has one role."""
    text = _control_and(
        "    broker:\n      hosts:\n        n1:\n    worker:\n      hosts:\n        n1:\n"
    )
    assert _one_problem(text) == (
        "hosts.yaml: host 'n1' is in two roles, broker and worker; a host has one role: "
        "keep it in one"
    )


def test_no_control_host_is_refused_saying_how_to_name_one() -> None:
    """Brokers and workers but no control host: refused, saying where the control host goes."""
    message = _one_problem("all:\n  children:\n    worker:\n      hosts:\n        w1:\n")
    assert message == (
        "hosts.yaml: no control host; make exactly one host the control host (put it under "
        "all.children.control.hosts with kubernetes_role: control_plane)"
    )


def test_two_control_hosts_are_refused_as_unsupported_high_availability() -> None:
    """Two control hosts would be a k3s HA cluster, which is not supported: the message says so."""
    message = _one_problem(_control_and("        c2:\n"))
    assert message.startswith("hosts.yaml: 2 control hosts (c1, c2); GreenFlow installs one k3s")
    assert "high availability with several servers is not supported" in message


def test_an_inventory_without_hosts_is_refused() -> None:
    """Groups with no host at all: refused, asking for at least the control host."""
    message = _one_problem("all:\n  children:\n    control:\n    worker:\n")
    assert message.startswith("hosts.yaml: no hosts; list at least the control host")


@pytest.mark.parametrize("port", ["0", "70000", "'22'", "true", "2.5"])
def test_a_bad_port_is_refused_naming_the_host(port: str) -> None:
    """ansible_port must be a port number 1–65535 (not a string, not a bool)."""
    message = _one_problem(
        _control_and("").replace("c1:\n", f"c1:\n          ansible_port: {port}\n")
    )
    assert message.startswith("hosts.yaml: host 'c1': ansible_port: expected a port number 1–65535")


def test_a_key_file_that_does_not_exist_is_refused_with_its_full_path(tmp_path: Path) -> None:
    """A missing ansible_ssh_private_key_file is named, resolved, with what to do."""
    text = _control_and("").replace(
        "c1:\n", "c1:\n          ansible_ssh_private_key_file: keys/missing\n"
    )
    message = _one_problem(text, tmp_path)
    assert message == (
        f"hosts.yaml: host 'c1': ansible_ssh_private_key_file: no such file: "
        f"{tmp_path / 'keys' / 'missing'} (relative paths are relative to {tmp_path}); give the "
        "path of the private key that logs in to this host"
    )


def test_a_key_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    """A key path naming a directory is no key file."""
    text = _control_and("").replace(
        "c1:\n", f"c1:\n          ansible_ssh_private_key_file: {tmp_path}\n"
    )
    assert "ansible_ssh_private_key_file: is not a file" in _one_problem(text, tmp_path)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ansible_become: 'yes please'", "ansible_become: expected true or false"),
        ("ansible_user: 'two words'", "ansible_user: expected a user name"),
        ("ansible_host: 'not an address!'", "ansible_host: expected a host name or an IP address"),
    ],
)
def test_bad_ssh_variables_are_refused_naming_the_host_and_variable(
    line: str, expected: str
) -> None:
    """Each ansible_* variable is checked; the message names the host and the variable."""
    message = _one_problem(_control_and("").replace("c1:\n", f"c1:\n          {line}\n"))
    assert message.startswith(f"hosts.yaml: host 'c1': {expected}")


def test_an_unread_ansible_variable_is_refused_listing_the_read_ones() -> None:
    """A variable GreenFlow would ignore (e.g. a password) is refused rather than ignored."""
    message = _one_problem(
        _control_and("").replace("c1:\n", "c1:\n          ansible_password: x\n")
    )
    assert message == (
        "hosts.yaml: host 'c1': unknown variable(s) ansible_password; GreenFlow reads "
        "kubernetes_role, ansible_host, ansible_user, ansible_port, "
        "ansible_ssh_private_key_file, ansible_become: remove the others"
    )


def test_a_host_name_that_cannot_name_a_node_is_refused() -> None:
    """The inventory name becomes the node's name, so it must be a valid one."""
    message = _one_problem(_control_and("").replace("c1:", "Node_1:"))
    assert message.startswith("hosts.yaml: host 'Node_1': 'Node_1' cannot name a Kubernetes node")
    assert message.endswith("rename it and set ansible_host to its address")


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    """Several bad hosts: one error with a line for each, so they are fixed in one go."""
    text = _control_and(
        "    worker:\n      hosts:\n"
        "        w1: {ansible_port: 0}\n"
        "        w2: {kubernetes_role: nodes}\n"
    )
    with pytest.raises(InventoryError) as info:
        _parse(text)
    assert str(info.value).splitlines()[0] == "hosts.yaml: 2 problems in the inventory:"
    assert [p.split(":")[1] for p in info.value.problems] == [" host 'w1'", " host 'w2'"]


def test_an_inventory_error_is_a_plan_error() -> None:
    """The CLI prints it as one message without a traceback, like every plan error."""
    assert issubclass(InventoryError, PlanError)


# -- from the plan: inventory file or inline hosts ------------------------------------------


def _plan(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text("# the plan\n")
    return plan


def test_the_inventory_file_is_relative_to_the_plans_directory(tmp_path: Path) -> None:
    """inventory = "inventory/hosts.yaml" is read next to the plan, wherever the cwd is."""
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yaml").write_text(ISSUE_HOSTS_YAML)
    inventory = load_inventory(K3sConfig(inventory="inventory/hosts.yaml"), _plan(tmp_path))
    assert inventory.control.name == "paravance-14.rennes.grid5000.fr"
    assert inventory.source == "inventory/hosts.yaml"


def test_a_missing_inventory_file_is_refused_naming_the_plan_key(tmp_path: Path) -> None:
    """A hosts.yaml that is not there: the plan key, the resolved path and the rule."""
    with pytest.raises(InventoryError) as info:
        load_inventory(K3sConfig(inventory="hosts.yaml"), _plan(tmp_path))
    assert str(info.value) == (
        f"plan.toml [platform] inventory: no such file {tmp_path / 'hosts.yaml'} (relative "
        "paths are relative to the plan's directory)"
    )


def test_errors_in_the_inventory_file_name_it_as_the_plan_wrote_it(tmp_path: Path) -> None:
    """Messages about hosts.yaml start with the path the plan gave."""
    (tmp_path / "inv").mkdir()
    (tmp_path / "inv" / "hosts.yaml").write_text(
        "all:\n  children:\n    worker:\n      hosts:\n        w1:\n"
    )
    with pytest.raises(InventoryError, match=r"^inv/hosts\.yaml: no control host; "):
        load_inventory(K3sConfig(inventory="inv/hosts.yaml"), _plan(tmp_path))


def test_inline_hosts_become_the_inventory_in_role_order(tmp_path: Path) -> None:
    """[[platform.hosts]] tables: name, address, user, port, key (relative to the plan), become."""
    (tmp_path / "id_test").write_text("key")
    config = K3sConfig(
        hosts=(
            HostEntry(name="w1", role="worker", address="10.0.0.3"),
            HostEntry(name="c1", role="control", address="10.0.0.1", user="root", port=2222),
            HostEntry(name="b1", role="broker", key="id_test", user="debian", become=True),
        )
    )
    inventory = load_inventory(config, _plan(tmp_path))
    assert inventory.hosts == (
        Host("c1", "10.0.0.1", "control", user="root", port=2222),
        Host("b1", "b1", "broker", user="debian", key=tmp_path / "id_test", become=True),
        Host("w1", "10.0.0.3", "worker"),
    )
    assert inventory.source == "plan.toml [platform] hosts"


def test_an_inline_hosts_missing_key_file_is_refused_naming_the_entry(tmp_path: Path) -> None:
    """A key that does not exist: the plan key with the entry's index, and the host."""
    config = K3sConfig(hosts=(HostEntry(name="c1", role="control", key="nokey"),))
    with pytest.raises(InventoryError) as info:
        load_inventory(config, _plan(tmp_path))
    assert str(info.value).startswith(
        f"plan.toml [platform] hosts[0] key: host 'c1': no such file: {tmp_path / 'nokey'}"
    )


def test_node_ip_is_set_on_the_hosts_it_names(tmp_path: Path) -> None:
    """node_ip maps host names to the address k3s gives the node."""
    config = K3sConfig(
        hosts=(HostEntry(name="c1", role="control"), HostEntry(name="w1", role="worker")),
        node_ip={"w1": "192.168.1.7"},
    )
    inventory = load_inventory(config, _plan(tmp_path))
    assert [(h.name, h.node_ip) for h in inventory.hosts] == [("c1", None), ("w1", "192.168.1.7")]


def test_node_ip_for_a_host_not_in_the_inventory_is_refused(tmp_path: Path) -> None:
    """A node_ip entry naming no host is a typo: refused, with the close name and the hosts."""
    config = K3sConfig(
        hosts=(HostEntry(name="c1", role="control"), HostEntry(name="worker-1", role="worker")),
        node_ip={"worker1": "192.168.1.7"},
    )
    with pytest.raises(InventoryError) as info:
        load_inventory(config, _plan(tmp_path))
    assert str(info.value) == (
        "plan.toml [platform] node_ip: 'worker1' is not in the inventory (did you mean "
        '"worker-1"?); hosts: c1, worker-1'
    )


def test_the_gateway_is_parsed_onto_the_inventory(tmp_path: Path) -> None:
    """gateway = "user@host:port" becomes the inventory's jump host."""
    config = K3sConfig(
        hosts=(HostEntry(name="c1", role="control"),), gateway="me@access.example.org:2222"
    )
    inventory = load_inventory(config, _plan(tmp_path))
    assert inventory.gateway == Gateway("access.example.org", "me", 2222)


# -- the Inventory value ---------------------------------------------------------------------


def _inventory(**kw: Any) -> Inventory:
    hosts = [
        Host("c1", "10.0.0.1", "control"),
        Host("b1", "10.0.0.2", "broker"),
        Host("w1", "10.0.0.3", "worker"),
        Host("b2", "10.0.0.4", "broker"),
    ]
    return Inventory(hosts, **kw)


def test_the_inventory_gives_the_control_host_hosts_by_role_and_agents() -> None:
    """control is the one control host; by_role keeps order; agents are brokers then workers."""
    inventory = _inventory()
    assert inventory.control.name == "c1"
    assert [h.name for h in inventory.by_role("broker")] == ["b1", "b2"]
    assert [h.name for h in inventory.by_role("worker")] == ["w1"]
    assert [h.name for h in inventory.agents] == ["b1", "b2", "w1"]
    assert inventory["w1"].address == "10.0.0.3"
    with pytest.raises(KeyError):
        inventory["nope"]


def test_an_inventory_built_in_code_checks_its_roles_too() -> None:
    """Another platform (greenflow-g5k) building an Inventory gets the same role checks."""
    with pytest.raises(InventoryError, match=r"^g5k job 42: no control host"):
        Inventory([Host("w1", "w1", "worker")], source="g5k job 42")
    with pytest.raises(InventoryError, match=r"2 control hosts"):
        Inventory([Host("c1", "c1", "control"), Host("c2", "c2", "control")])


# -- gateway ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "gateway"),
    [
        ("access.grid5000.fr", Gateway("access.grid5000.fr")),
        ("jdoe@access.grid5000.fr", Gateway("access.grid5000.fr", "jdoe")),
        ("jdoe@access.grid5000.fr:2222", Gateway("access.grid5000.fr", "jdoe", 2222)),
        ("10.0.0.1:22", Gateway("10.0.0.1", None, 22)),
        ("me@[2001:db8::1]:2222", Gateway("2001:db8::1", "me", 2222)),
        ("[::1]", Gateway("::1")),
    ],
)
def test_a_gateway_reads_as_user_at_host_colon_port(text: str, gateway: Gateway) -> None:
    """user and port are optional; an IPv6 address is written in brackets."""
    assert Gateway.parse(text) == gateway
    assert Gateway.parse(str(gateway)) == gateway


@pytest.mark.parametrize("text", ["", "me@", "host:", "host:ssh", "host:0", "a b", "[::1", "@host"])
def test_a_malformed_gateway_is_refused_with_the_expected_form(text: str) -> None:
    """Anything but [user@]host[:port] is refused, showing the form."""
    with pytest.raises(ValueError, match=r'^expected "user@host:port"'):
        Gateway.parse(text)


# -- roles → node labels and taints ------------------------------------------------------------


@pytest.mark.parametrize("role", ["control", "broker", "worker"])
def test_a_hosts_labels_select_its_role_and_no_other(role: Any) -> None:
    """node_labels match the kubernetes platform's selector for the host's role only, so
    services place themselves by role unchanged."""
    labels = node_labels(Host("n1", "n1", role))
    assert carries(labels, DEFAULT_ROLE_LABELS[role])
    others = [r for r in DEFAULT_ROLE_LABELS if r != role]
    assert not any(carries(labels, DEFAULT_ROLE_LABELS[r]) for r in others)


def test_labels_by_role_are_those_of_the_original_greenflow() -> None:
    """broker and worker nodes get node.kubernetes.io/<role>=true; the control host the
    control-plane role label k3s gives its server."""
    assert node_labels(Host("b", "b", "broker")) == {"node.kubernetes.io/broker": "true"}
    assert node_labels(Host("w", "w", "worker")) == {"node.kubernetes.io/worker": "true"}
    assert node_labels(Host("c", "c", "control")) == {
        "node-role.kubernetes.io/control-plane": "true"
    }


@pytest.mark.parametrize("role", ["control", "broker", "worker"])
def test_registration_labels_are_ones_a_kubelet_may_set_on_itself(role: Any) -> None:
    """--node-label values stay out of the kubernetes.io namespaces a kubelet may not set
    (the NodeRestriction rule): node.kubernetes.io/ is allowed, node-role.* is k3s' own."""
    for key in registration_labels(Host("n", "n", role)):
        prefix = key.partition("/")[0]
        restricted = prefix.endswith(("kubernetes.io", "k8s.io"))
        assert not restricted or prefix in ("node.kubernetes.io", "kubelet.kubernetes.io")


def test_the_control_host_registers_no_label_k3s_sets_itself() -> None:
    """The control host's role label is set by k3s on its server, so none is passed."""
    assert registration_labels(Host("c", "c", "control")) == {}
    assert registration_labels(Host("b", "b", "broker")) == {"node.kubernetes.io/broker": "true"}


def test_taints_are_keyed_by_the_role_label_so_role_services_tolerate_them() -> None:
    """taints = { broker = "NoSchedule" } taints brokers with their role label, which the
    kubernetes platform's tolerations for the broker role match; other roles stay untainted."""
    taints = {"broker": "NoSchedule"}
    assert node_taints(Host("b", "b", "broker"), taints) == [
        "node.kubernetes.io/broker=true:NoSchedule"
    ]
    assert node_taints(Host("w", "w", "worker"), taints) == []
