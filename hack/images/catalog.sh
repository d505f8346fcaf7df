# shellcheck shell=bash
# The image catalogue shared by build.sh and load.sh: short name -> image reference.
# References keep the names the upstream install YAML uses, so a cluster built from local images
# and one built from registry images differ only in where the image came from
# (CHURN_IMAGE_SOURCE=local|upstream). Images with no upstream counterpart live under churn/.
IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$IMAGES_DIR/../.." && pwd)"
# shellcheck source=SCRIPTDIR/../versions.env
source "$REPO_ROOT/hack/versions.env"
CHURN_CACHE="${CHURN_CACHE:-$HOME/.cache/churn-serving}"
CHURN_IMAGE_SOURCE="${CHURN_IMAGE_SOURCE:-local}"

# Build order: Go images first (their compile step needs no Docker engine), then Python images.
ALL_IMAGES=(
	kserve-controller
	prometheus-operator
	prometheus-config-reloader
	prometheus
	metrics-server
	traefik
	minio
	storage-initializer
	kserve-sklearnserver
	mlflow
	transformer
	training
)

image_ref() {
	case "$1" in
	kserve-controller) echo "kserve/kserve-controller:$KSERVE_VERSION" ;;
	storage-initializer) echo "kserve/storage-initializer:$KSERVE_VERSION" ;;
	kserve-sklearnserver) echo "kserve/sklearnserver:$KSERVE_VERSION" ;;
	prometheus-operator) echo "quay.io/prometheus-operator/prometheus-operator:$PROMETHEUS_OPERATOR_VERSION" ;;
	prometheus-config-reloader) echo "quay.io/prometheus-operator/prometheus-config-reloader:$PROMETHEUS_OPERATOR_VERSION" ;;
	prometheus) echo "quay.io/prometheus/prometheus:$PROMETHEUS_VERSION" ;;
	metrics-server) echo "registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION" ;;
	traefik) echo "docker.io/library/traefik:$TRAEFIK_VERSION" ;;
	# MinIO publishes no images for current sources any more; the tag is the Go module version.
	minio) echo "churn/minio:$MINIO_VERSION" ;;
	mlflow) echo "churn/mlflow:$MLFLOW_VERSION" ;;
	transformer) echo "churn/transformer:$(project_version)" ;;
	training) echo "churn/training:$(project_version)" ;;
	*)
		echo "unknown image '$1' (known: ${ALL_IMAGES[*]})" >&2
		return 1
		;;
	esac
}

# True when a registry publishes exactly this reference with the same content recipe, so
# CHURN_IMAGE_SOURCE=upstream may pull it instead of building. The rest are always built.
image_is_published() {
	case "$1" in
	minio | mlflow | transformer | training) return 1 ;;
	*) return 0 ;;
	esac
}

project_version() {
	sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO_ROOT/pyproject.toml" | head -n 1
}

images_log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
