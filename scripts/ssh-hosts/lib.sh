# Shared by scripts/ssh-hosts/{up,down} (sourced, not run). See `up` for what the hosts are.

# The fixed names: one set of test hosts per machine. Only these are ever created or removed.
BRIDGE=gfhbr0                                  # the hosts' switch; this machine's side of it
NS_PREFIX=gfh                                  # namespaces gfh0, gfh1, ... (also hostnames)
VETH_PREFIX=gfhv                               # host ends of the veth pairs: gfhv0, gfhv1, ...
SUBNET=${SSH_HOSTS_SUBNET:-10.77.0}            # a /24; gfhN is $SUBNET.(N+1)
HOST_IP=$SUBNET.254                            # this machine, on the bridge
STATE=${SSH_HOSTS_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/greenflow/ssh-hosts/state}
# Machine-wide bookkeeping, whichever state dir is used: the lock, the state dir of the set
# that is up, the mount points and firewall rule `up` added (so `down` after a crash, or
# with another SSH_HOSTS_STATE, still removes exactly those). Lost at reboot, as the hosts.
RUN=/run/greenflow-ssh-hosts
# Marks a directory as a state dir, so `down` never deletes a directory it did not make.
MARKER=.greenflow-ssh-hosts

# What each host has for its own (per-host directories under $STATE/gfhN/fs): the k3s
# paths (/etc/rancher holds /etc/rancher/node, the node password), the login side (sshd's
# config, host key and authorized keys in /etc/ssh; homes), and /tmp and /var/log, where
# installers put their files and logs. /run is a fresh tmpfs per host.
PRIVATE_DIRS=(/etc/ssh /etc/rancher /var/lib/rancher /var/lib/kubelet /usr/local/bin /var/log /home /tmp)
# Per-host copies of these files, with the test users and host names added.
PRIVATE_FILES=(/etc/passwd /etc/group /etc/shadow /etc/sudoers /etc/hosts /etc/hostname)

export PATH=$PATH:/usr/sbin:/sbin
log() { echo "ssh-hosts: $*" >&2; }
fail() { log "$*"; exit 1; }
# Exit status 77 (automake's "skipped"): this machine cannot have the hosts at all (not
# root, no network namespaces, sshd not installed). The pytest fixture skips on it.
cannot() { log "cannot run here: $*"; exit 77; }

# Serialise with other up/down runs and with a test session that holds the hosts
# (greenflow_k3s.testing.hosts takes this lock for its whole session and sets
# SSH_HOSTS_LOCK_HELD=1 for the scripts it runs).
take_lock() {
    mkdir -p "$RUN"
    [ "${SSH_HOSTS_LOCK_HELD:-}" = 1 ] && return 0
    exec 9>>"$RUN/lock"
    flock -n 9 || fail "the test hosts are in use ($RUN/lock is held by: $(cat "$RUN/lock" 2>/dev/null)); wait for it to end"
    echo "pid $$ (scripts/ssh-hosts/$(basename "$0"))" >"$RUN/lock"
}

our_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${NS_PREFIX}[0-9]+\$" || true; }
