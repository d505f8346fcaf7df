#!/usr/bin/env bash
# Builds (or, with CHURN_IMAGE_SOURCE=upstream, pulls) the images the e2e stack runs and loads them
# into the kind cluster. Both steps skip what is already there (build keys, image IDs on the node).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"

images=(kserve-controller storage-initializer kserve-sklearnserver prometheus-operator
	prometheus-config-reloader prometheus metrics-server traefik minio mlflow transformer training)

started=$SECONDS
bash "$REPO_DIR/hack/images/build.sh" "${images[@]}"
# One image per load: kind stages a tar of everything it loads under /tmp, and all of them at
# once (~5 GB) does not fit next to the caches on these machines' disks.
for image in "${images[@]}"; do
	KIND_CLUSTER="$KIND_CLUSTER_NAME" KIND="$(command -v kind)" bash "$REPO_DIR/hack/images/load.sh" "$image"
done
e2e_log "images built and loaded into $KIND_CLUSTER_NAME in $((SECONDS - started))s"
