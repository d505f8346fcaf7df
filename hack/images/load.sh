#!/usr/bin/env bash
# Loads the built images into a kind cluster's nodes, so pods start without any registry:
#   hack/images/load.sh [name...]       all images by default (names: hack/images/catalog.sh)
#   KIND_CLUSTER_NAME=churn (default)   the cluster to load into (as hack/k8s/kind-up.sh)
# Images that are not built yet are an error: run hack/images/build.sh first.
set -euo pipefail
# shellcheck source=SCRIPTDIR/catalog.sh
source "$(dirname "$0")/catalog.sh"
KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-churn}"
KIND="${KIND:-$CHURN_CACHE/bin/kind}"

names=("$@")
((${#names[@]})) || names=("${ALL_IMAGES[@]}")
refs=()
for name in "${names[@]}"; do
	ref="$(image_ref "$name")"
	docker image inspect "$ref" >/dev/null 2>&1 || {
		echo "load.sh: $ref ($name) is not built; run hack/images/build.sh $name" >&2
		exit 1
	}
	refs+=("$ref")
done
started=$SECONDS
images_log "loading ${#refs[@]} image(s) into kind cluster '$KIND_CLUSTER_NAME'"
# One call: kind saves all images into a single archive and imports it once per node.
"$KIND" load docker-image --name "$KIND_CLUSTER_NAME" "${refs[@]}"
images_log "loaded in $((SECONDS - started))s"
