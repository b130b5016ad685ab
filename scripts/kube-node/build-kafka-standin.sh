#!/usr/bin/env bash
# Stand-in docker.io/apache/kafka:$KAFKA_VERSION: the JRE rootfs (build-images.sh) + Kafka's jars at /opt/kafka/libs
# + shims for /etc/kafka/docker/run and the /opt/kafka/bin scripts GreenFlow's manifests call.
# usage: IMAGES=DIR bash scripts/kube-node/build-kafka-standin.sh   (build-images.sh calls it)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); IMAGES=${IMAGES:-${XDG_CACHE_HOME:-$HOME/.cache}/greenflow/kube-node/images}; V=${KAFKA_VERSION:-4.3.1}
LIBS=${KAFKA_LIBS:-$HOME/.cache/greenflow/kafka/$V/libs}
[ -f "$IMAGES/kafka-rootfs.tar" ] || { echo "no $IMAGES/kafka-rootfs.tar (build-images.sh)"; exit 1; }
[ -d "$LIBS" ] || { echo "no $LIBS (greenflow fetches it: greenflow_kafka.distribution)"; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
S=$HERE/kafka-standin
mkdir -p "$T/opt/kafka/libs" "$T/opt/kafka/bin" "$T/opt/kafka/config" "$T/etc/kafka/docker" "$T/var/lib/kafka/data"
cp "$LIBS"/*.jar "$T/opt/kafka/libs/"
install -m 755 "$S/run" "$T/etc/kafka/docker/run"
install -m 755 "$S/kafka-run-class.sh" "$S/tool.sh" "$T/opt/kafka/bin/"
for t in kafka-server-start kafka-storage kafka-topics kafka-consumer-groups kafka-get-offsets kafka-producer-perf-test kafka-consumer-perf-test; do
  ln -s tool.sh "$T/opt/kafka/bin/$t.sh"; done
cp "$S/log4j2.properties" "$S/tools-log4j2.properties" "$T/opt/kafka/config/"
cp "$IMAGES/kafka-rootfs.tar" "$T/rootfs.tar"
# appuser (uid 1000) as in the official image; config and data writable by it
tar -xf "$T/rootfs.tar" -C "$T" ./etc/passwd ./etc/group 2>/dev/null || tar -xf "$T/rootfs.tar" -C "$T" etc/passwd etc/group
grep -q '^appuser:' "$T/etc/passwd" || echo 'appuser:x:1000:1000::/home/appuser:/bin/bash' >> "$T/etc/passwd"
grep -q '^appuser:' "$T/etc/group" || echo 'appuser:x:1000:' >> "$T/etc/group"
tar -C "$T" --owner=0 --group=0 --numeric-owner -rf "$T/rootfs.tar" ./etc/passwd ./etc/group ./etc/kafka ./opt/kafka/libs ./opt/kafka/bin
tar -C "$T" --owner=1000 --group=1000 --numeric-owner -rf "$T/rootfs.tar" ./opt/kafka/config ./var/lib/kafka
python3 "$HERE/mkoci.py" "$T/rootfs.tar" "$IMAGES/kafka-oci.tar.part" "docker.io/apache/kafka:$V" --cmd '["/etc/kafka/docker/run"]' \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/kafka/bin \
  --env JAVA_HOME=/usr/lib/jvm/java-21-openjdk-amd64 --workdir /opt/kafka --user appuser
mv "$IMAGES/kafka-oci.tar.part" "$IMAGES/kafka-oci.tar"
