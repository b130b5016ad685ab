#!/usr/bin/env bash
# Stand-ins for the images greenflow-theodolite deploys by default (Theodolite v0.9.0's and the
# schema registry its chart uses), all in one OCI archive with two shared layers: the Kafka
# stand-in's layer (the JRE and Kafka's jars, build-kafka-standin.sh) and GreenFlow's own
# builds of the use cases (greenflow_theodolite.apps: the apps' jar and libs/ with
# kafka-streams and rocksdbjni) with a `run MAIN` script. Each image differs only in its Cmd,
# so the archive is the two layers once (~420 MB), whatever the number of names.
# The names and main classes must equal greenflow_theodolite's defaults (config.py IMAGE_*,
# apps.py UC_MAIN, GENERATOR_MAIN, REGISTRY_MAIN); greenflow-theodolite's unit tests check.
# usage: THEODOLITE_APPS=DIR IMAGES=DIR bash scripts/kube-node/build-theodolite-standin.sh
#   (build-images.sh calls it when THEODOLITE_APPS is set)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); IMAGES=${IMAGES:-${XDG_CACHE_HOME:-$HOME/.cache}/greenflow/kube-node/images}
APPS=${THEODOLITE_APPS:?THEODOLITE_APPS (a build of greenflow_theodolite.apps: its jar and libs/) is required}
TAG=v0.9.0
REGISTRY_REF=docker.io/confluentinc/cp-schema-registry:5.4.0
PKG=io.greenflow.theodolite
[ -f "$IMAGES/kafka-oci.tar" ] || { echo "no $IMAGES/kafka-oci.tar (build-kafka-standin.sh)"; exit 1; }
[ -f "$APPS/greenflow-theodolite-apps.jar" ] && [ -d "$APPS/libs" ] || { echo "no apps' jar and libs/ in $APPS"; exit 1; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# The Kafka stand-in's one layer, as it is (same digest: containerd stores it once for both).
tar -xf "$IMAGES/kafka-oci.tar" -C "$T" index.json
manifest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' "$T/index.json")
tar -xf "$IMAGES/kafka-oci.tar" -C "$T" "blobs/sha256/$manifest"
layer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][0]["digest"].split(":")[1])' "$T/blobs/sha256/$manifest")
tar -xf "$IMAGES/kafka-oci.tar" -C "$T" "blobs/sha256/$layer"
mv "$T/blobs/sha256/$layer" "$T/kafka-layer.tar"
O=$T/layer/opt/greenflow-theodolite
mkdir -p "$O/libs"
cp "$APPS/greenflow-theodolite-apps.jar" "$O/"
cp "$APPS"/libs/*.jar "$O/libs/"
install -m 755 "$HERE/theodolite-standin/run" "$O/run"
tar -C "$T/layer" --owner=0 --group=0 --numeric-owner -cf "$T/theodolite-layer.tar" ./opt
R=/opt/greenflow-theodolite/run
images=()
for n in 1 2 3 4; do
    images+=(--image "ghcr.io/cau-se/theodolite-uc$n-kstreams-app:$TAG" "[\"$R\",\"$PKG.uc$n.Uc${n}Application\"]")
    images+=(--image "ghcr.io/cau-se/theodolite-uc$n-workload-generator:$TAG" "[\"$R\",\"$PKG.loadgen.LoadGenerator\"]")
done
python3 "$HERE/mkoci.py" "$T/kafka-layer.tar" "$IMAGES/theodolite-oci.tar.part" "$REGISTRY_REF" \
  --cmd "[\"$R\",\"$PKG.registry.SchemaRegistryStandIn\"]" --layer "$T/theodolite-layer.tar" "${images[@]}" \
  --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env JAVA_HOME=/usr/lib/jvm/java-21-openjdk-amd64 --workdir /opt/greenflow-theodolite --user appuser
mv "$IMAGES/theodolite-oci.tar.part" "$IMAGES/theodolite-oci.tar"
