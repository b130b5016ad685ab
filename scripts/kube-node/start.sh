#!/usr/bin/env bash
# Start containerd, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, coredns (all on this host).
# usage: WORK=DIR NODE_IP=A.B.C.D bash scripts/kube-node/start.sh [component...]   (default: all, in order)
# (`up` runs it with everything prepared; binaries from `bash scripts/kube-apiserver --node`.)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); K=${WORK:?WORK is required}; NODE_IP=${NODE_IP:?NODE_IP is required}
B=${KUBE_BIN_DIR:-$(bash "$HERE/../kube-apiserver" --print-dir)}; KB=$B
# configs: rendered from scripts/kube-node/etc with @WORK@ = the work dir, @NODE_IP@ = the node IP
mkdir -p $K/etc; (cd $HERE/etc && find . -type f) | while read -r f; do mkdir -p "$K/etc/$(dirname "$f")"; sed -e "s|@WORK@|$K|g" -e "s|@NODE_IP@|$NODE_IP|g" "$HERE/etc/$f" > "$K/etc/$f"; done
mkdir -p $K/run $K/logs $K/var $K/etc/manifests
export PATH=$PATH:/usr/sbin:/sbin
start() { # name cmd...
  local n=$1; shift
  if [ -f $K/run/$n.pid ] && kill -0 "$(cat $K/run/$n.pid)" 2>/dev/null; then echo "$n already running"; return; fi
  setsid nohup "$@" >>$K/logs/$n.log 2>&1 < /dev/null & echo $! > $K/run/$n.pid
  echo "started $n pid $(cat $K/run/$n.pid)"
}
waitfor() { local what=$1; shift; for i in $(seq 1 120); do "$@" >/dev/null 2>&1 && { echo "$what ok after ${i}x0.5s"; return 0; }; sleep 0.5; done; echo "$what NOT ready"; return 1; }
TOKEN=$(cat $K/pki/token)
comps=${*:-containerd etcd apiserver controller-manager scheduler kubelet kube-proxy coredns}
for c in $comps; do case $c in
containerd)
  [ -f $K/run/sysctl.orig ] || sysctl -e net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables > $K/run/sysctl.orig
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  start containerd containerd --config $K/etc/containerd.toml
  waitfor containerd ctr -a $K/run/containerd/containerd.sock version ;;
etcd)
  start etcd $KB/etcd --name=kubenode --data-dir=$K/var/etcd --listen-client-urls=http://127.0.0.1:12379 \
    --advertise-client-urls=http://127.0.0.1:12379 --listen-peer-urls=http://127.0.0.1:12380 \
    --initial-advertise-peer-urls=http://127.0.0.1:12380 --initial-cluster=kubenode=http://127.0.0.1:12380 \
    --unsafe-no-fsync --log-level=warn
  waitfor etcd curl -sf http://127.0.0.1:12379/health ;;
apiserver)
  # Pods reach it as https://kubernetes.default (10.96.0.1:443, Prometheus' kubernetes_sd,
  # Scaphandre --containers): it listens on the node IP too, and the lease reconciler
  # publishes NODE_IP:16443 as the endpoints of the `kubernetes` Service.
  start apiserver $KB/kube-apiserver --etcd-servers=http://127.0.0.1:12379 --bind-address=0.0.0.0 \
    --advertise-address=$NODE_IP --secure-port=16443 --tls-cert-file=$K/pki/apiserver.crt --tls-private-key-file=$K/pki/apiserver.key \
    --client-ca-file=$K/pki/ca.crt \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-account-key-file=$K/pki/sa.pub \
    --service-account-signing-key-file=$K/pki/sa.key --service-cluster-ip-range=10.96.0.0/16 \
    --authorization-mode=Node,RBAC --token-auth-file=$K/pki/tokens.csv --allow-privileged=true \
    --endpoint-reconciler-type=lease --profiling=false --kubelet-preferred-address-types=InternalIP,Hostname
  waitfor apiserver curl -sf --cacert $K/pki/ca.crt -H "Authorization: Bearer $TOKEN" https://127.0.0.1:16443/readyz ;;
controller-manager)
  start controller-manager $B/kube-controller-manager --kubeconfig=$K/kubeconfig --authentication-kubeconfig=$K/kubeconfig \
    --authorization-kubeconfig=$K/kubeconfig --bind-address=127.0.0.1 --secure-port=10257 \
    --service-account-private-key-file=$K/pki/sa.key --root-ca-file=$K/pki/ca.crt --use-service-account-credentials=false \
    --controllers='*' --leader-elect=false \
    --cluster-signing-cert-file=$K/pki/ca.crt --cluster-signing-key-file=$K/pki/ca.key ;;
scheduler)
  start scheduler $B/kube-scheduler --kubeconfig=$K/kubeconfig --authentication-kubeconfig=$K/kubeconfig \
    --authorization-kubeconfig=$K/kubeconfig --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false ;;
kubelet)
  start kubelet $B/kubelet --config=$K/etc/kubelet.yaml --kubeconfig=$K/kubeconfig --root-dir=$K/var/kubelet \
    --cert-dir=$K/var/kubelet-pki --hostname-override=kubenode --node-ip=$NODE_IP --v=2
  waitfor kubelet curl -sf http://127.0.0.1:10248/healthz ;;
kube-proxy)
  start kube-proxy $B/kube-proxy --kubeconfig=$K/kubeconfig --hostname-override=kubenode --proxy-mode=iptables \
    --cluster-cidr=10.244.0.0/24 --conntrack-max-per-core=0 --metrics-bind-address=127.0.0.1:10249 \
    --healthz-bind-address=127.0.0.1:10256
  waitfor kube-proxy curl -s http://127.0.0.1:10256/healthz ;;
coredns)
  start coredns $B/coredns -conf $K/etc/Corefile
  waitfor coredns sh -c "ss -lun | grep -qF '$NODE_IP:53 '" ;;
esac; done
