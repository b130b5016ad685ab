#!/bin/sh
# A stand-in for k3s' install script (https://get.k3s.io, k3s-io/k3s install.sh) on the SSH
# test hosts of scripts/ssh-hosts, where k3s itself cannot be had (no systemd, no internet,
# no k3s release reachable: docs/k3s-testing.md, "The k3s stand-in"). An installer drives it
# exactly as it drives the real one:
#
#   INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_VERSION=v1.33.4+k3s1 \
#     INSTALL_K3S_EXEC='server --node-name=n1 --disable=traefik' sh install.sh
#   INSTALL_K3S_SKIP_DOWNLOAD=true K3S_URL=https://10.77.0.1:6443 K3S_TOKEN_FILE=/path \
#     sh install.sh --node-label=node.kubernetes.io/worker=true        # agent (K3S_URL set)
#
# What it reads, as the real script does:
#   INSTALL_K3S_EXEC, then arguments (`sh -s - server ...`): `server` or `agent` and flags;
#     without a command, `agent` when K3S_URL is set (then K3S_TOKEN or K3S_TOKEN_FILE is
#     mandatory) else `server`. INSTALL_K3S_EXEC is split on white space.
#   INSTALL_K3S_VERSION: the version `k3s --version` then reports (the stand-in binary has
#     none of its own: it is recorded beside it, BIN_DIR/.k3s-standin-version).
#   INSTALL_K3S_SKIP_DOWNLOAD=true: required here; k3s must already be BIN_DIR/k3s.
#     Without it the real script downloads the release: impossible here, an error.
#   INSTALL_K3S_SKIP_START=true: install, do not start. INSTALL_K3S_FORCE_RESTART=true:
#     restart even when nothing changed. INSTALL_K3S_SKIP_ENABLE: accepted (no boot here).
#   INSTALL_K3S_BIN_DIR (default /usr/local/bin): k3s, k3s-killall.sh, the uninstall script.
#   INSTALL_K3S_SYSTEMD_DIR: where the "unit" and its env file go. k3s' default is
#     /etc/systemd/system, which the test hosts share with this machine; the stand-in's
#     default is /etc/rancher/standin/systemd, private to each host.
#   K3S_URL (https:// only), K3S_TOKEN, K3S_TOKEN_FILE, K3S_NODE_NAME and every other K3S_*
#     and CONTAINERD_* variable (and NO_PROXY, HTTP_PROXY, HTTPS_PROXY): copied into the
#     env file, created mode 600 before anything is written to it, read at each start of
#     the service. The token is never printed.
# Refused (they change what the real script does, and the stand-in does not do it):
#   INSTALL_K3S_NAME, INSTALL_K3S_TYPE, INSTALL_K3S_COMMIT, INSTALL_K3S_PR; K3S_URL with
#   the `server` command (joining servers: HA); running as a user other than root.
#
# The "service" (no systemd on the test hosts): SYSTEMD_DIR/k3s.service (k3s-agent.service
# for an agent) is a sh script that plays the unit: it reads the env file and runs
# `BIN_DIR/k3s server|agent FLAGS`, restarting it 5 s after it exits (Restart=always,
# RestartSec=5s), in its own session (setsid), its pid in /run/k3s-standin/k3s.pid, its
# output in /var/log/k3s.log (k3s-agent.log; where k3s logs under OpenRC). Starting a server
# waits until it is ready (k3s' unit is Type=notify: `systemctl restart k3s` returns once
# the API answers, the token and kubeconfig written); an agent is started and not waited
# for (Type=exec), so a refused token shows in its log and as a node that never registers.
# As with the real script, an install that changes nothing (binary, version, unit, env) does
# not restart a running service.
#
# Written to BIN_DIR: k3s-killall.sh (stops the service and everything it started, on this
# host only) and k3s-uninstall.sh (server) or k3s-agent-uninstall.sh (agent): killall, then
# removes the unit, env file, pid and log, /etc/rancher/k3s, /run/k3s, the data dir
# (/var/lib/rancher/k3s and --data-dir), /var/lib/kubelet, BIN_DIR/k3s and its version,
# k3s-killall.sh (when no other k3s service is left) and itself.
set -e

info() { echo "[INFO]  $*"; }
warn() { echo "[WARN]  $*" >&2; }
fatal() {
    echo "[ERROR]  $*" >&2
    exit 1
}

# --- what the real script would do differently, refused rather than ignored ---------------
for var in INSTALL_K3S_NAME INSTALL_K3S_TYPE INSTALL_K3S_COMMIT INSTALL_K3S_PR; do
    eval "value=\${$var:-}"
    [ -z "$value" ] || fatal "$var is not supported by the k3s stand-in (scripts/k3s-standin)"
done
[ "$(id -u)" -eq 0 ] || fatal "the k3s stand-in installs as root only (k3s' script would use sudo); run it through sudo"

BIN_DIR=${INSTALL_K3S_BIN_DIR:-/usr/local/bin}
SYSTEMD_DIR=${INSTALL_K3S_SYSTEMD_DIR:-/etc/rancher/standin/systemd}
RUN_DIR=/run/k3s-standin
VERSION_FILE=$BIN_DIR/.k3s-standin-version

# --- the command and its flags: INSTALL_K3S_EXEC split on white space, then the arguments --
# (Each argument is quoted for the unit's command line: 'it'"'"'s' style.)
quote() {
    for arg in "$@"; do
        printf "'%s' " "$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")"
    done
}
set -f # split INSTALL_K3S_EXEC on white space (the contract), but expand no pattern in it
# shellcheck disable=SC2086
eval "set -- $(quote ${INSTALL_K3S_EXEC:-}) $(quote "$@")"
set +f
case "${1:-}" in
-* | "")
    if [ -z "${K3S_URL:-}" ]; then
        CMD_K3S=server
    else
        if [ -z "${K3S_TOKEN:-}" ] && [ -z "${K3S_TOKEN_FILE:-}" ]; then
            fatal "Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined."
        fi
        CMD_K3S=agent
    fi
    ;;
server | agent)
    CMD_K3S=$1
    shift
    ;;
*) fatal "unknown k3s command '$1' in INSTALL_K3S_EXEC or the arguments: expected server or agent" ;;
esac
case "${K3S_URL:-}" in
"") ;;
https://*) ;;
*) fatal "Only https:// URLs are supported for K3S_URL (have ${K3S_URL})" ;;
esac

# Flags the script itself reads: the token (agent), the data dir (uninstall removes it).
DATA_DIRS="/var/lib/rancher/k3s"
[ -z "${K3S_DATA_DIR:-}" ] || DATA_DIRS="$DATA_DIRS $K3S_DATA_DIR"
has_token=no
[ -z "${K3S_TOKEN:-}" ] && [ -z "${K3S_TOKEN_FILE:-}" ] || has_token=yes
prev=
for arg in "$@"; do
    case "$prev" in
    --data-dir | -d) DATA_DIRS="$DATA_DIRS $arg" ;;
    esac
    case "$arg" in
    --data-dir=* | -d=*) DATA_DIRS="$DATA_DIRS ${arg#*=}" ;;
    --token | --token=* | -t | -t=* | --token-file | --token-file=*) has_token=yes ;;
    --server | --server=* | -s | -s=*) [ "$CMD_K3S" = agent ] || fatal "joining a k3s server to another (--server, HA) is not supported by the k3s stand-in" ;;
    esac
    prev=$arg
done
if [ "$CMD_K3S" = agent ]; then
    [ -n "${K3S_URL:-}" ] || case " $* " in *" --server"* | *" -s "* | *" -s="*) ;; *) fatal "the k3s agent needs K3S_URL (https://SERVER:6443) or --server" ;; esac
    [ "$has_token" = yes ] || fatal "the k3s agent needs K3S_TOKEN or K3S_TOKEN_FILE (or --token, --token-file)"
elif [ -n "${K3S_URL:-}" ]; then
    fatal "K3S_URL is set with the 'server' command: joining servers into a cluster (HA) is not supported by the k3s stand-in"
fi

if [ "$CMD_K3S" = server ]; then
    SYSTEM_NAME=k3s
    UNINSTALL_SH=$BIN_DIR/k3s-uninstall.sh
else
    SYSTEM_NAME=k3s-agent
    UNINSTALL_SH=$BIN_DIR/k3s-agent-uninstall.sh
fi
KILLALL_SH=$BIN_DIR/k3s-killall.sh
FILE_SERVICE=$SYSTEMD_DIR/$SYSTEM_NAME.service
FILE_ENV=$SYSTEMD_DIR/$SYSTEM_NAME.service.env
PID_FILE=$RUN_DIR/$SYSTEM_NAME.pid
READY_FILE=$RUN_DIR/$SYSTEM_NAME.ready
LOG_FILE=/var/log/$SYSTEM_NAME.log

# --- the binary: never downloaded here ------------------------------------------------------
if [ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" != true ]; then
    fatal "downloading k3s is impossible here: the k3s stand-in (scripts/k3s-standin) has no release to fetch and the test hosts have no internet; upload the k3s binary to $BIN_DIR/k3s and set INSTALL_K3S_SKIP_DOWNLOAD=true"
fi
info "Skipping k3s download and verify"
[ -x "$BIN_DIR/k3s" ] || fatal "Executable k3s binary not found at $BIN_DIR/k3s"
[ -n "${INSTALL_K3S_VERSION:-}" ] || warn "INSTALL_K3S_VERSION is not set: k3s --version will report an unknown version"

hashes() {
    # What a restart depends on (k3s' get_installed_hashes): binary, version, unit, env.
    cat "$BIN_DIR/k3s" "$VERSION_FILE" "$FILE_SERVICE" "$FILE_ENV" 2>/dev/null | sha256sum
}
PRE_HASHES=$(hashes)

umask 022
mkdir -p "$BIN_DIR" "$SYSTEMD_DIR" "$RUN_DIR"
printf '%s\n' "${INSTALL_K3S_VERSION:-v0.0.0-unknown+standin}" >"$VERSION_FILE"

# --- k3s-killall.sh: this host's k3s processes only ------------------------------------------
# The test hosts share one kernel, so "k3s processes" are those in this network namespace
# that carry the stand-in's mark in their environment (K3S_STANDIN=1: the service, k3s and
# every component it starts, containerd's shims included), plus each shim's process tree
# (the pods).
info "Creating killall script $KILLALL_SH"
cat >"$KILLALL_SH" <<'KILLALL'
#!/bin/sh
# k3s-killall.sh of the k3s stand-in (scripts/k3s-standin/install.sh): stops the k3s
# services of this host and everything they started (containerd, its shims and the pods),
# then unmounts and removes what they left (mounts, pod network namespaces, the cni0
# bridge, CNI and kube-proxy iptables chains, pod routes, the kubelet's cgroups).
[ "$(id -u)" -eq 0 ] || exec sudo -n "$0" "$@"
export PATH=$PATH:/usr/sbin:/sbin
self_net=$(readlink /proc/self/ns/net)
ours() { # pids in this network namespace marked K3S_STANDIN=1
    grep -lzx K3S_STANDIN=1 /proc/[0-9]*/environ 2>/dev/null | while read -r f; do
        d=${f%/environ}
        [ "$(readlink "$d/ns/net" 2>/dev/null)" = "$self_net" ] && echo "${d#/proc/}"
    done
}
descendants() { # the process tree under each pid given (not the pids themselves)
    ps -eo pid=,ppid= | awk -v roots=" $* " '
        { parent[$1] = $2; n[NR] = $1 }
        END {
            split(roots, r, " "); for (i in r) seen[r[i]] = 1
            do { grown = 0
                for (i = 1; i <= NR; i++) { p = n[i]
                    if (!(p in seen) && (parent[p] in seen)) { seen[p] = 1; grown = 1; print p } }
            } while (grown)
        }'
}
shims=$(for p in $(ours); do
    case "$(cat /proc/$p/comm 2>/dev/null)" in containerd-shim*) echo "$p" ;; esac
done)
# The services first (they stop k3s without restarting it), then what is left.
for pid_file in /run/k3s-standin/*.pid; do
    [ -f "$pid_file" ] && kill -TERM "$(cat "$pid_file")" 2>/dev/null
done
pods=$(descendants $shims)
# shellcheck disable=SC2046
kill -TERM $(ours) 2>/dev/null
i=0
while [ -n "$(ours)" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
# shellcheck disable=SC2046
kill -KILL $(ours) $shims $pods 2>/dev/null
alive() { for p in $shims $pods; do [ ! -d /proc/$p ] || return 0; done; [ -n "$(ours)" ]; }
i=0
while alive && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
rm -f /run/k3s-standin/*.pid /run/k3s-standin/*.ready
# Mounts under k3s' paths (never a path itself: /var/lib/kubelet is a mount point of the
# test hosts, which the kubelet also binds onto itself to make it shared; k3s' killall
# leaves it too) and the pods' network namespaces, in this host's mount table, deepest first.
{
    for dir in /run/k3s /var/lib/kubelet @DATA_DIRS@; do
        awk -v d="$dir" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo
    done
    awk 'index($5, "/run/netns/cni-") == 1 { print $5 }' /proc/self/mountinfo
} | sort -ru | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
rm -f /run/netns/cni-* 2>/dev/null
rmdir /run/netns 2>/dev/null
# The killed shims' sockets (containerd puts them in /run/containerd/s whatever its state
# dir): those nothing listens on any more.
for sock in /run/containerd/s/*; do
    [ -S "$sock" ] || continue
    ss -xlH 2>/dev/null | grep -qF " $sock " || rm -f "$sock"
done
rmdir /run/containerd/s /run/containerd 2>/dev/null
ip link del cni0 2>/dev/null
# CNI's result cache (/var/lib/cni, which k3s' killall removes whole, is shared by the test
# hosts): this host's network, cbr0-<hostname>, and the loopback results of its containers.
net=cbr0-$(hostname)
for f in /var/lib/cni/results/"$net"-*; do
    [ -e "$f" ] || continue
    id=${f#/var/lib/cni/results/"$net"-}
    rm -f "$f" "/var/lib/cni/results/cni-loopback-${id%-*}-lo"
done
# CNI's and kube-proxy's chains (CNI-*, KUBE-*), as k3s' killall drops them: emptied, the
# jumps to them deleted, then the chains.
for ipt in iptables ip6tables; do
    command -v $ipt >/dev/null 2>&1 || continue
    for tbl in nat filter mangle; do
        chains=$($ipt -t $tbl -S 2>/dev/null | awk '/^-N (CNI|KUBE)-/{print $2}')
        for ch in $chains; do $ipt -t $tbl -F "$ch"; done
        $ipt -t $tbl -S 2>/dev/null | grep -E -- '-j (CNI|KUBE)-' | sed 's/^-A/-D/' | while read -r rule; do
            eval $ipt -t $tbl "$rule"
        done
        for ch in $chains; do $ipt -t $tbl -X "$ch"; done
    done
done
# The routes to the other nodes' pod CIDRs (flannel host-gw's, `proto 77` in the stand-in).
ip route flush proto 77 2>/dev/null
# The kubelet's cgroups (its cgroupRoot is /k3s-standin/<this host's name>).
host=$(hostname)
for root in /sys/fs/cgroup/*/k3s-standin/"$host" /sys/fs/cgroup/k3s-standin/"$host"; do
    [ -d "$root" ] && find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
    rmdir "${root%/*}" 2>/dev/null
done
# The cgroup hierarchies k3s mounted on a test host (whose /sys had none), last first.
if [ -f /run/k3s-standin/cgroup-mounts ]; then
    tac /run/k3s-standin/cgroup-mounts | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
    rm -f /run/k3s-standin/cgroup-mounts
fi
true
KILLALL
sed -i "s|@DATA_DIRS@|$DATA_DIRS|" "$KILLALL_SH"
chmod 755 "$KILLALL_SH"

# --- the uninstall script -------------------------------------------------------------------
info "Creating uninstall script $UNINSTALL_SH"
cat >"$UNINSTALL_SH" <<UNINSTALL
#!/bin/sh
# $(basename "$UNINSTALL_SH") of the k3s stand-in (scripts/k3s-standin/install.sh).
[ "\$(id -u)" -eq 0 ] || exec sudo -n "\$0" "\$@"
[ ! -x "$KILLALL_SH" ] || "$KILLALL_SH"
rm -f "$FILE_SERVICE" "$FILE_ENV" "$PID_FILE" "$READY_FILE" "$LOG_FILE"
rmdir "$SYSTEMD_DIR" "$(dirname "$SYSTEMD_DIR")" "$RUN_DIR" 2>/dev/null
if ls "$SYSTEMD_DIR"/k3s*.service >/dev/null 2>&1; then
    echo "Additional k3s services installed, skipping uninstall of k3s"
    rm -f "$UNINSTALL_SH"
    exit 0
fi
rm -rf /etc/rancher/k3s /run/k3s $DATA_DIRS /var/log/pods /var/log/containers
# /var/lib/kubelet itself is a mount point on the test hosts: its contents then.
rm -rf /var/lib/kubelet 2>/dev/null || find /var/lib/kubelet -mindepth 1 -delete
rm -f "$BIN_DIR/k3s" "$VERSION_FILE" "$KILLALL_SH" "$UNINSTALL_SH"
UNINSTALL
chmod 755 "$UNINSTALL_SH"

# --- the env file: 600 before a byte is written, never shown -------------------------------
info "env: Creating environment file $FILE_ENV"
rm -f "$FILE_ENV"
(umask 077 && : >"$FILE_ENV")
chmod 600 "$FILE_ENV"
# `export -p` quotes each value for sh (dash: `export NAME='value'`).
export -p | sed -n 's/^export //p' | grep -E '^(K3S|CONTAINERD)_[A-Za-z0-9_]*=' >>"$FILE_ENV" || true
export -p | sed -n 's/^export //p' | grep -Ei '^(NO|HTTP|HTTPS)_PROXY=' >>"$FILE_ENV" || true

# --- the unit: a sh script with Restart=always semantics ------------------------------------
info "systemd: Creating service file $FILE_SERVICE (k3s stand-in: a supervised process, no systemd)"
EXEC_LINE="$BIN_DIR/k3s $CMD_K3S $(quote "$@")"
cat >"$FILE_SERVICE" <<SERVICE
#!/bin/sh
# $SYSTEM_NAME.service of the k3s stand-in (scripts/k3s-standin/install.sh), in place of:
# [Service]
# Type=$([ "$CMD_K3S" = server ] && echo notify || echo exec)
# EnvironmentFile=-$FILE_ENV
# Restart=always
# RestartSec=5s
# ExecStart=$EXEC_LINE
# Started by install.sh as \`setsid sh $FILE_SERVICE\` (pid in $PID_FILE, output in
# $LOG_FILE); TERM stops it and k3s, without a restart.
echo \$\$ >"$PID_FILE"
export K3S_STANDIN=1 K3S_STANDIN_NOTIFY="$READY_FILE"
child=
stopping=
trap 'stopping=1; [ -z "\$child" ] || kill -TERM "\$child" 2>/dev/null' TERM INT HUP
while [ -z "\$stopping" ]; do
    echo "\$(date -u +%FT%TZ) $SYSTEM_NAME: starting: $EXEC_LINE"
    (
        set -a
        [ ! -f "$FILE_ENV" ] || . "$FILE_ENV"
        set +a
        exec $EXEC_LINE
    ) &
    child=\$!
    wait "\$child"
    status=\$?
    while kill -0 "\$child" 2>/dev/null; do wait "\$child"; status=\$?; done
    child=
    [ -z "\$stopping" ] || break
    echo "\$(date -u +%FT%TZ) $SYSTEM_NAME: k3s exited with status \$status; restarting in 5 s"
    sleep 5 &
    wait \$! 2>/dev/null
done
echo "\$(date -u +%FT%TZ) $SYSTEM_NAME: stopped"
rm -f "$PID_FILE"
SERVICE
chmod 755 "$FILE_SERVICE"
[ "${INSTALL_K3S_SKIP_ENABLE:-}" != true ] || info "INSTALL_K3S_SKIP_ENABLE: nothing is enabled at boot by the stand-in anyway"

# --- start ----------------------------------------------------------------------------------
running() { [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; }
if [ "${INSTALL_K3S_SKIP_START:-}" = true ]; then
    info "Skipping start (INSTALL_K3S_SKIP_START)"
    exit 0
fi
if [ "$PRE_HASHES" = "$(hashes)" ] && [ "${INSTALL_K3S_FORCE_RESTART:-}" != true ] && running; then
    info "No change detected so skipping service start"
    exit 0
fi
if running; then
    info "systemd: Stopping $SYSTEM_NAME"
    pid=$(cat "$PID_FILE")
    kill -TERM "$pid" 2>/dev/null || true
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ $i -lt 300 ] || fatal "$SYSTEM_NAME (pid $pid) did not stop within 30 s"
        sleep 0.1
    done
fi
info "systemd: Starting $SYSTEM_NAME"
rm -f "$READY_FILE"
mkdir -p "$(dirname "$LOG_FILE")"
touch "$LOG_FILE"
log_start=$(($(wc -c <"$LOG_FILE") + 1))
# Its own session, no terminal, and as under systemd only the env file's variables (read
# by the unit at each start), nothing of this SSH session's: it outlives the login.
env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root K3S_STANDIN=1 \
    setsid sh "$FILE_SERVICE" </dev/null >>"$LOG_FILE" 2>&1 &
if [ "$CMD_K3S" = agent ]; then
    exit 0
fi
# Type=notify: wait for the server to say it is ready (token and kubeconfig written); a
# k3s that exits first fails the start, as `systemctl restart k3s` would.
timeout=${INSTALL_K3S_STANDIN_START_TIMEOUT:-180}
i=0
until [ -f "$READY_FILE" ]; do
    i=$((i + 1))
    if tail -c "+$log_start" "$LOG_FILE" | grep -q "k3s exited with status"; then
        tail -c "+$log_start" "$LOG_FILE" | tail -n 30 >&2
        fatal "Job for $SYSTEM_NAME failed: k3s exited before it was ready (log: $LOG_FILE)"
    fi
    if [ $i -gt $((timeout * 5)) ]; then
        tail -n 30 "$LOG_FILE" >&2
        fatal "$SYSTEM_NAME did not become ready within $timeout s (log: $LOG_FILE)"
    fi
    sleep 0.2
done
info "$SYSTEM_NAME is ready"
