#!/usr/bin/env bash
# Stop everything start.sh started (by pid file), tearing pods down through the kubelet first so CNI DEL runs,
# then clean up leftovers (tasks, mounts, netns, bridge, kube-proxy rules, cgroups). Safe to run twice.
K=${WORK:?WORK is required}
KB=${KUBE_BIN_DIR:-$(bash "$(dirname "$0")/../kube-apiserver" --print-dir)}
export PATH=$PATH:/usr/sbin:/sbin
alive() { [ -f $K/run/$1.pid ] && kill -0 "$(cat $K/run/$1.pid)" 2>/dev/null; }
stopone() {
  alive $1 || { rm -f $K/run/$1.pid; return; }
  local p; p=$(cat $K/run/$1.pid); kill $p
  for i in $(seq 40); do kill -0 $p 2>/dev/null || break; sleep 0.25; done
  kill -0 $p 2>/dev/null && { kill -9 $p; echo "killed -9 $1"; } || echo "stopped $1"
  rm -f $K/run/$1.pid
}
C="ctr -a $K/run/containerd/containerd.sock -n k8s.io"
# 1. no controllers recreating pods; then delete every pod (grace 0) and let the kubelet stop the sandboxes
stopone controller-manager; stopone scheduler
if alive apiserver && alive kubelet && [ -f $K/pki/token ]; then
  T=$(cat $K/pki/token); A=https://127.0.0.1:16443
  for ns in $(curl -s --cacert $K/pki/ca.crt -H "Authorization: Bearer $T" $A/api/v1/namespaces | python3 -c 'import json,sys;print(" ".join(i["metadata"]["name"] for i in json.load(sys.stdin)["items"]))'); do
    curl -s -o /dev/null --cacert $K/pki/ca.crt -H "Authorization: Bearer $T" -H 'Content-Type: application/json' \
      -X DELETE "$A/api/v1/namespaces/$ns/pods" -d '{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0}'
  done
  for i in $(seq 60); do [ -z "$($C tasks ls -q 2>/dev/null)" ] && break; sleep 0.5; done
  echo "running tasks left after pod deletion: $($C tasks ls -q 2>/dev/null | wc -l)"
fi
for n in coredns kube-proxy kubelet apiserver etcd; do stopone $n; done
# 2. whatever containers remain
if alive containerd; then
  for t in $($C tasks ls -q 2>/dev/null); do $C tasks kill -s SIGKILL $t 2>/dev/null; done
  sleep 1
  for t in $($C tasks ls -q 2>/dev/null); do $C tasks delete -f $t >/dev/null 2>&1; done
  for c in $($C containers ls -q 2>/dev/null); do $C containers delete $c >/dev/null 2>&1; done
fi
stopone containerd
for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $K/run/containerd/containerd.sock" || true); do kill $p 2>/dev/null && echo "killed shim $p"; done
# 3. leftovers: mounts under the work dir, CNI netns, bridge, kube-proxy rules, pod cgroups
findmnt -rn -o TARGET | grep "^$K/" | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
for ns in /var/run/netns/cni-*; do [ -e "$ns" ] && { umount "$ns" 2>/dev/null; rm -f "$ns"; }; done
ip link del kn0 2>/dev/null && echo "deleted bridge kn0"
[ -x $KB/kube-proxy ] && $KB/kube-proxy --cleanup >/dev/null 2>&1
for tbl in nat filter; do
  for ch in $(iptables -t $tbl -S 2>/dev/null | awk '/^-N CNI-/{print $2}'); do iptables -t $tbl -F $ch; done
  iptables -t $tbl -S 2>/dev/null | grep -E -- '-j CNI-' | sed 's/^-A/-D/' | while read -r r; do eval iptables -t $tbl $r; done
  for ch in $(iptables -t $tbl -S 2>/dev/null | awk '/^-N CNI-/{print $2}'); do iptables -t $tbl -X $ch; done
done
# KUBE-FIREWALL (filter) is left by kubelet/kube-proxy even after kube-proxy --cleanup
if iptables -S KUBE-FIREWALL >/dev/null 2>&1; then
  iptables -D INPUT -j KUBE-FIREWALL 2>/dev/null; iptables -D OUTPUT -j KUBE-FIREWALL 2>/dev/null
  iptables -F KUBE-FIREWALL; iptables -X KUBE-FIREWALL
fi
for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/k8s.io; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
# restore the sysctls start.sh changed
if [ -f $K/run/sysctl.orig ]; then sysctl -qp $K/run/sysctl.orig && echo "restored: $(tr '\n' ' ' < $K/run/sysctl.orig)"; rm -f $K/run/sysctl.orig; fi
true
