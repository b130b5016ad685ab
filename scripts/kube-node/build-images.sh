#!/usr/bin/env bash
# The node's images, as OCI archives for `ctr images import` (there is no registry here):
#  - registry.k8s.io/pause:3.10.2 — the sandbox image: pause.c from the k8s.io/kubernetes
#    module (already in the Go module cache from scripts/kube-apiserver), gcc -static;
#  - docker.io/apache/kafka:$KAFKA_VERSION — a stand-in for the official image: a Debian
#    trixie minbase + openjdk-21-jre-headless rootfs (mmdebstrap, ~150 s, cached) plus
#    Kafka's jars and shims (build-kafka-standin.sh; docs/kubernetes-testing.md).
# Cached in $IMAGES (default ~/.cache/greenflow/kube-node/images); a warm run takes seconds.
# usage: KAFKA_LIBS=DIR [IMAGES=DIR] bash scripts/kube-node/build-images.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
IMAGES=${IMAGES:-${XDG_CACHE_HOME:-$HOME/.cache}/greenflow/kube-node/images}
KUBE_VERSION=${GREENFLOW_KUBE_VERSION:-v1.37.2}
mkdir -p "$IMAGES"
exec 9>"$IMAGES/.lock"; flock 9
log() { echo "kube-node images: $*" >&2; }

if [ ! -f "$IMAGES/pause-oci.tar" ]; then
    t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
    src="$(go env GOMODCACHE)/k8s.io/kubernetes@$KUBE_VERSION/build/pause/linux/pause.c"
    [ -f "$src" ] || (cd "$t" && GOFLAGS= go mod download "k8s.io/kubernetes@$KUBE_VERSION")
    mkdir -p "$t/root"
    gcc -Os -static -DVERSION=3.10.2-greenflow -o "$t/root/pause" "$src"
    strip "$t/root/pause"
    tar --owner=0 --group=0 --numeric-owner -C "$t/root" -cf "$t/pause-rootfs.tar" pause
    python3 "$HERE/mkoci.py" "$t/pause-rootfs.tar" "$IMAGES/pause-oci.tar.part" registry.k8s.io/pause:3.10.2 \
        --entrypoint '["/pause"]'
    mv "$IMAGES/pause-oci.tar.part" "$IMAGES/pause-oci.tar"
    log "pause built"
fi

if [ ! -f "$IMAGES/kafka-rootfs.tar" ]; then
    s=$(date +%s)
    log "JRE rootfs: mmdebstrap trixie + openjdk-21-jre-headless (about 150 s)"
    mmdebstrap --quiet --format=tar --variant=minbase --include=openjdk-21-jre-headless,procps,iproute2 \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-include=/usr/share/man/man1' \
        --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
        --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*' \
        trixie "$IMAGES/kafka-rootfs.part.tar" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    mv "$IMAGES/kafka-rootfs.part.tar" "$IMAGES/kafka-rootfs.tar"
    log "JRE rootfs built in $(($(date +%s) - s)) s"
fi

# The stand-in is rebuilt when its inputs change (the shims, the jars' version). It needs
# Kafka's jars, which GreenFlow resolves with mvn on first use (`up` is given them; from
# scripts/setup-system, before any Kafka was resolved, only the base images are built).
V=${KAFKA_VERSION:-4.3.1}
export KAFKA_LIBS=${KAFKA_LIBS:-${XDG_CACHE_HOME:-$HOME/.cache}/greenflow/kafka/$V/libs}
if ! ls "$KAFKA_LIBS"/kafka-clients-*.jar >/dev/null 2>&1; then
    log "no Kafka $V jars in $KAFKA_LIBS yet: base images only (the stand-in is built by up)"
    exit 0
fi
stamp="$V $(cat "$HERE"/kafka-standin/* "$HERE/build-kafka-standin.sh" "$HERE/mkoci.py" | sha256sum | cut -c1-16)"
if [ "$(cat "$IMAGES/kafka-oci.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -f "$IMAGES/kafka-oci.tar" ]; then
    IMAGES=$IMAGES KAFKA_VERSION=$V bash "$HERE/build-kafka-standin.sh"
    echo "$stamp" >"$IMAGES/kafka-oci.stamp"
    log "docker.io/apache/kafka:$V stand-in built"
fi
log "ready: $IMAGES"
