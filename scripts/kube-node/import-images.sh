#!/usr/bin/env bash
# Import the locally built OCI archives (build-images.sh) into containerd's k8s.io namespace.
# usage: WORK=DIR [IMAGES=DIR] bash scripts/kube-node/import-images.sh   (containerd running)
set -euo pipefail
K=${WORK:?WORK (the node work dir) is required}
IMAGES=${IMAGES:-${XDG_CACHE_HOME:-$HOME/.cache}/greenflow/kube-node/images}
C="ctr -a $K/run/containerd/containerd.sock -n k8s.io"
for f in pause kafka; do
    s=$(date +%s)
    $C images import "$IMAGES/$f-oci.tar" >/dev/null
    echo "imported $f in $(($(date +%s) - s)) s"
done
