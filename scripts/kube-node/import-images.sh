#!/usr/bin/env bash
# Import the locally built OCI archives (build-images.sh) into containerd's k8s.io namespace.
# usage: WORK=DIR [IMAGES=DIR] bash scripts/kube-node/import-images.sh   (containerd running)
set -euo pipefail
K=${WORK:?WORK (the node work dir) is required}
IMAGES=${IMAGES:-${XDG_CACHE_HOME:-$HOME/.cache}/greenflow/kube-node/images}
C="ctr -a $K/run/containerd/containerd.sock -n k8s.io"
# Prometheus and Scaphandre when build-images.sh could build them (their tests then fail
# on ErrImagePull).
shopt -s nullglob
# Theodolite's when the tests that use them had them built (THEODOLITE_APPS).
theodolite=()
[ -n "${THEODOLITE_APPS:-}" ] && [ -f "$IMAGES/theodolite-oci.tar" ] && theodolite=("$IMAGES/theodolite-oci.tar")
for tar in "$IMAGES/pause-oci.tar" "$IMAGES/kafka-oci.tar" "$IMAGES"/prometheus-*-oci.tar \
           "$IMAGES"/scaphandre-*-oci.tar "${theodolite[@]}"; do
    s=$(date +%s)
    $C images import "$tar" >/dev/null
    echo "imported $(basename "$tar" -oci.tar) in $(($(date +%s) - s)) s"
done
