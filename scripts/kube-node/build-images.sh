#!/usr/bin/env bash
# The node's images, as OCI archives for `ctr images import` (there is no registry here):
#  - registry.k8s.io/pause:3.10.2 — the sandbox image: pause.c from the k8s.io/kubernetes
#    module (already in the Go module cache from scripts/kube-apiserver), gcc -static;
#  - docker.io/library/busybox:<version> — Debian's static busybox (busybox-static) alone;
#  - docker.io/apache/kafka:$KAFKA_VERSION — a stand-in for the official image: a Debian
#    trixie minbase + openjdk-21-jre-headless rootfs (mmdebstrap, ~150 s, cached) plus
#    Kafka's jars and shims (build-kafka-standin.sh; docs/kubernetes-testing.md).
#  - docker.io/prom/prometheus:v$PROMETHEUS_VERSION — a stand-in for the official image: the
#    same Prometheus release built here from its Go module (github.com/prometheus/prometheus
#    v0.3MM.P is release 3.MM.P) through the Go module proxy, CGO off like the official
#    build, with only the kubernetes and file service discoveries compiled in (build tags
#    remove_all_sd,enable_kubernetes_sd; the others pull cloud SDKs and add minutes) and
#    no web UI assets (the HTTP API is all GreenFlow uses); the official image's layout
#    (/bin/prometheus, /prometheus, user nobody). ~3 min cold, then cached.
#    (Debian's prometheus cannot stand in: Debian builds it without kubernetes_sd.)
#  - docker.io/hubblo/scaphandre:$SCAPHANDRE_VERSION — a stand-in for the official image: the
#    same Scaphandre release built here from crates.io (cargo install --locked, features
#    prometheus, containers and json (its stdout exporter needs serde_json); the default
#    features add exporters GreenFlow does not use,
#    whose riemann_client no longer builds on current rustc), the libraries ldd lists, and
#    one preloaded shim (scaphandre-standin/proc-modules-shim.c): this kernel has no
#    /proc/modules, where Scaphandre checks for a RAPL module and panics without it. ~3 min
#    cold. The energy it reads in the real-node test comes from a simulated powercap tree.
#  - ghcr.io/cau-se/theodolite-uc{1..4}-{kstreams-app,workload-generator}:v0.9.0 and
#    docker.io/confluentinc/cp-schema-registry:5.4.0 — stand-ins running GreenFlow's own
#    builds of Theodolite's use cases, generator and a registry (build-theodolite-standin.sh),
#    only when THEODOLITE_APPS names such a build (greenflow-theodolite's real-node tests).
# Cached in $IMAGES (default ~/.cache/greenflow/kube-node/images); a warm run takes seconds.
# usage: KAFKA_LIBS=DIR [IMAGES=DIR] [THEODOLITE_APPS=DIR] bash scripts/kube-node/build-images.sh
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

# A shell and network tools for the k3s stand-in's network test (nslookup, nc, httpd):
# Debian's statically linked busybox, whose version the name carries. (Its wget crashes: static
# glibc without NSS; nslookup resolves names with its own DNS client, nc fetches.)
if [ ! -f "$IMAGES/busybox-oci.tar" ]; then
    if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
        t=$(mktemp -d)
        v=$(/bin/busybox | sed -n '1s/^BusyBox v\([0-9.]*\).*/\1/p')
        mkdir -p "$t/root/bin" "$t/root/tmp"
        cp /bin/busybox "$t/root/bin/busybox"
        for tool in sh nslookup wget httpd nc awk cat echo sleep hostname mkdir; do ln -s busybox "$t/root/bin/$tool"; done
        chmod 1777 "$t/root/tmp"
        tar --owner=0 --group=0 --numeric-owner -C "$t/root" -cf "$t/rootfs.tar" .
        python3 "$HERE/mkoci.py" "$t/rootfs.tar" "$IMAGES/busybox-oci.tar.part" "docker.io/library/busybox:$v" \
            --cmd '["sh"]' --env PATH=/bin
        mv "$IMAGES/busybox-oci.tar.part" "$IMAGES/busybox-oci.tar"
        rm -rf "$t"
        log "docker.io/library/busybox:$v built from this machine's static busybox"
    else
        log "no static /bin/busybox (Debian: busybox-static): no busybox image; the k3s stand-in's network test will fail"
    fi
fi

# Must equal greenflow's default (PROMETHEUS_IMAGE in greenflow_kubernetes/services/base.py).
PROMETHEUS_VERSION=3.13.5
PROMETHEUS_REF=docker.io/prom/prometheus:v$PROMETHEUS_VERSION
if [ ! -f "$IMAGES/prometheus-$PROMETHEUS_VERSION-oci.tar" ]; then
    s=$(date +%s)
    minor=${PROMETHEUS_VERSION#3.}; minor=${minor%%.*}
    module_version=v0.$((300 + minor)).${PROMETHEUS_VERSION##*.}
    t=$(mktemp -d)
    # A wrapper module: `go install pkg@version` refuses a module whose go.mod has replace
    # directives, as Prometheus' has; the wrapper repeats them.
    gomod="$(cd "$t" && GOFLAGS= go mod download -json "github.com/prometheus/prometheus@$module_version" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
    {
        printf 'module greenflow.local/prometheus-build\n\ngo 1.26.0\n\n'
        printf 'require github.com/prometheus/prometheus %s\n\n' "$module_version"
        grep '^replace ' "$gomod" || true
    } >"$t/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/prometheus/prometheus/cmd/prometheus"\n' >"$t/tools.go"
    (
        cd "$t"
        export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
        go mod tidy >/dev/null 2>&1 || go mod tidy
        nice go build -p 2 -trimpath -tags remove_all_sd,enable_kubernetes_sd \
            -ldflags "-s -w -X github.com/prometheus/common/version.Version=$PROMETHEUS_VERSION -X github.com/prometheus/common/version.Branch=greenflow-standin" \
            -o "$t/root/bin/prometheus" github.com/prometheus/prometheus/cmd/prometheus
    )
    mkdir -p "$t/root/etc/prometheus" "$t/root/prometheus" "$t/root/tmp"
    printf 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$t/root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$t/root/etc/group"
    chmod 1777 "$t/root/tmp"
    chown 65534:65534 "$t/root/prometheus"
    tar --numeric-owner -C "$t/root" -cf "$t/rootfs.tar" .
    python3 "$HERE/mkoci.py" "$t/rootfs.tar" "$IMAGES/prometheus-oci.tar.part" "$PROMETHEUS_REF" \
        --entrypoint '["/bin/prometheus"]' \
        --cmd '["--config.file=/etc/prometheus/prometheus.yml","--storage.tsdb.path=/prometheus"]' \
        --workdir /prometheus --user nobody
    mv "$IMAGES/prometheus-oci.tar.part" "$IMAGES/prometheus-$PROMETHEUS_VERSION-oci.tar"
    rm -f "$IMAGES"/prometheus-oci.tar "$IMAGES"/prometheus-oci.stamp
    rm -rf "$t"
    log "$PROMETHEUS_REF stand-in built from github.com/prometheus/prometheus@$module_version in $(($(date +%s) - s)) s"
fi

# Must equal greenflow's default (SCAPHANDRE_IMAGE in greenflow_kubernetes/services/base.py).
SCAPHANDRE_VERSION=1.0.0
SCAPHANDRE_REF=docker.io/hubblo/scaphandre:$SCAPHANDRE_VERSION
shim_src="$HERE/scaphandre-standin/proc-modules-shim.c"
scaph_tar="$IMAGES/scaphandre-$SCAPHANDRE_VERSION-$(sha256sum "$shim_src" | cut -c1-12)-oci.tar"
if [ ! -f "$scaph_tar" ] && ! command -v cargo >/dev/null; then
    log "no cargo (Rust): no Scaphandre image; its real-node test will fail on ErrImagePull"
elif [ ! -f "$scaph_tar" ]; then
    s=$(date +%s)
    t=$(mktemp -d)
    # The binary is kept apart from the image, so a change of the shim rebuilds only that.
    bin_dir="$IMAGES/../scaphandre-$SCAPHANDRE_VERSION"
    if [ ! -x "$bin_dir/bin/scaphandre" ]; then
        nice cargo install "scaphandre@$SCAPHANDRE_VERSION" --locked --quiet \
            --no-default-features --features prometheus,containers,json \
            --root "$t/install" --target-dir "$t/target" -j 2
        mkdir -p "$bin_dir/bin"
        mv "$t/install/bin/scaphandre" "$bin_dir/bin/scaphandre"
    fi
    mkdir -p "$t/root/usr/local/bin" "$t/root/usr/local/lib" "$t/root/etc/greenflow-standin" "$t/root/tmp"
    cp "$bin_dir/bin/scaphandre" "$t/root/usr/local/bin/scaphandre"
    gcc -shared -fPIC -O2 -Wall -o "$t/root/usr/local/lib/proc-modules-shim.so" "$shim_src" -ldl
    # Libraries as ldd resolves them ("name => /path (addr)", and the loader's own line).
    for lib in $(ldd "$t/root/usr/local/bin/scaphandre" "$t/root/usr/local/lib/proc-modules-shim.so" |
                 awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u); do
        mkdir -p "$t/root$(dirname "$lib")"
        cp -L "$lib" "$t/root$lib"
    done
    echo /usr/local/lib/proc-modules-shim.so >"$t/root/etc/ld.so.preload"
    # The line Scaphandre looks for (name size refcount deps state offset).
    echo 'intel_rapl_common 40960 0 - Live 0x0000000000000000' >"$t/root/etc/greenflow-standin/proc-modules"
    printf 'root:x:0:0:root:/root:/bin/false\n' >"$t/root/etc/passwd"
    printf 'root:x:0:\n' >"$t/root/etc/group"
    chmod 1777 "$t/root/tmp"
    tar --owner=0 --group=0 --numeric-owner -C "$t/root" -cf "$t/rootfs.tar" .
    python3 "$HERE/mkoci.py" "$t/rootfs.tar" "$scaph_tar.part" "$SCAPHANDRE_REF" \
        --entrypoint '["/usr/local/bin/scaphandre"]'
    rm -f "$IMAGES"/scaphandre-*-oci.tar
    mv "$scaph_tar.part" "$scaph_tar"
    rm -rf "$t"
    log "$SCAPHANDRE_REF stand-in built from crates.io scaphandre $SCAPHANDRE_VERSION in $(($(date +%s) - s)) s"
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
# Theodolite's images (build-theodolite-standin.sh), when given GreenFlow's build of its apps
# (greenflow-theodolite's real-node tests pass THEODOLITE_APPS); rebuilt when an input changes.
if [ -n "${THEODOLITE_APPS:-}" ]; then
    stamp="$(cat "$IMAGES/kafka-oci.stamp") $(cat "$THEODOLITE_APPS/greenflow-theodolite-apps.jar" "$HERE"/theodolite-standin/* \
        "$HERE/build-theodolite-standin.sh" "$HERE/mkoci.py" | sha256sum | cut -c1-16) $(ls "$THEODOLITE_APPS/libs" | tr '\n' ' ')"
    if [ "$(cat "$IMAGES/theodolite-oci.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -f "$IMAGES/theodolite-oci.tar" ]; then
        IMAGES=$IMAGES bash "$HERE/build-theodolite-standin.sh" >&2
        echo "$stamp" >"$IMAGES/theodolite-oci.stamp"
        log "Theodolite's images (stand-ins) built"
    fi
fi
log "ready: $IMAGES"
