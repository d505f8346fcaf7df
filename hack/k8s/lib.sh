# Shared by the hack/k8s scripts (sourced, not run): versions, cache paths and image names.
# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this file.
# shellcheck source=SCRIPTDIR/../versions.env
source "$(dirname "${BASH_SOURCE[0]}")/../versions.env"
K8S_HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$K8S_HACK_DIR/../.." && pwd)"
CHURN_CACHE="${CHURN_CACHE:-$HOME/.cache/churn-serving}"
K8S_BIN_DIR="$CHURN_CACHE/k8s/$KUBERNETES_VERSION/bin"
# Add-on images live under a registry name nothing resolves, so a missing preload fails loudly
# instead of reaching out to a registry.
KUBE_ROUTER_IMAGE="churn.local/kube-router:$KUBE_ROUTER_VERSION"
LOCAL_PATH_PROVISIONER_IMAGE="churn.local/local-path-provisioner:$LOCAL_PATH_PROVISIONER_VERSION"
NET_BASE_IMAGE="churn.local/net-base:$DEBIAN_SUITE"

k8s_log() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The control-plane images kubeadm $KUBERNETES_VERSION deploys, exactly as it names them.
kubeadm_images() { "$K8S_BIN_DIR/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION"; }

# The node image tag carries a hash of everything that goes into it, so editing a node file or one
# of its versions builds a new image instead of reusing a stale one (other pins do not matter).
node_image() {
	local inputs
	inputs="$(
		printf '%s\n' "$DEBIAN_SUITE" "$CHURN_DEBIAN_BASE_IMAGE" "$KUBERNETES_VERSION" "$ETCD_VERSION" \
			"$COREDNS_VERSION" "$PAUSE_VERSION" "$CRI_TOOLS_VERSION" "$KUBE_ROUTER_VERSION" \
			"$LOCAL_PATH_PROVISIONER_VERSION"
		cd "$REPO_DIR" && find hack/k8s/node hack/k8s/pause hack/k8s/runc-bounded -type f | sort | xargs cat
	)"
	printf 'churn.local/kind-node:%s-%s' "$KUBERNETES_VERSION" "$(sha256sum <<<"$inputs" | cut -c1-10)"
}
