#!/usr/bin/env bash
# Import the locally built OCI archives into containerd's k8s.io namespace (needs containerd running).
set -euo pipefail
K=${WORK:-$HOME/.cache/greenflow/kube-node}; C="ctr -a $K/run/containerd/containerd.sock -n k8s.io"
for f in pause busybox kafka; do
  [ -f $K/image/$f-oci.tar ] && { s=$(date +%s); $C images import $K/image/$f-oci.tar; echo "imported $f in $(( $(date +%s)-s ))s"; }
done
$C images ls -q | grep -v '^sha256:'
