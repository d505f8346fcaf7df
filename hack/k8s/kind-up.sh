#!/usr/bin/env bash
# Creates (or reuses) the kind cluster and checks it works:
#   node Ready, CoreDNS running, a pod from an image built on this machine runs.
#   CHURN_IMAGE_SOURCE=local     (default) node image and kind built here (hack/k8s/node-image.sh)
#   CHURN_IMAGE_SOURCE=upstream  plain kind with its default kindest/node image, pulled by Docker
#   KIND_CLUSTER_NAME            cluster name (default churn); kubectl context kind-$KIND_CLUSTER_NAME
#   KIND_CONFIG                  kind config (default manifests/kind/cluster.yaml)
#   KIND_SMOKE=0                 skip the pod check
# kind writes the kubeconfig to $KUBECONFIG (default ~/.kube/config).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
CHURN_IMAGE_SOURCE="${CHURN_IMAGE_SOURCE:-local}"
KIND_CLUSTER_NAME="${KIND_CLUSTER_NAME:-churn}"
KIND_CONFIG="${KIND_CONFIG:-$REPO_DIR/manifests/kind/cluster.yaml}"
KIND_SMOKE="${KIND_SMOKE:-1}"
READY_TIMEOUT="${READY_TIMEOUT:-300s}"
SMOKE_IMAGE=churn.local/kind-smoke:1

step() { k8s_log "$* ($(date -u +%H:%M:%S))"; }

bash "$REPO_DIR/hack/docker.sh"
case "$CHURN_IMAGE_SOURCE" in
local)
	bash "$K8S_HACK_DIR/build.sh" kind kubectl
	KIND="$K8S_BIN_DIR/kind"
	# The Makefile puts $CHURN_CACHE/bin on PATH: `kind get clusters` etc. work from a shell too.
	mkdir -p "$CHURN_CACHE/bin" && ln -sf "$KIND" "$CHURN_CACHE/bin/kind"
	KUBECTL="$K8S_BIN_DIR/kubectl"
	step "node image"
	node_image="$(bash "$K8S_HACK_DIR/node-image.sh")"
	node_image_args=(--image "$node_image")
	smoke_base="$CHURN_DEBIAN_BASE_IMAGE"
	;;
upstream)
	KIND="$(command -v kind)" || { k8s_log "upstream mode needs kind on PATH"; exit 1; }
	KUBECTL="$(command -v kubectl)" || { k8s_log "upstream mode needs kubectl on PATH"; exit 1; }
	node_image=""
	node_image_args=()
	smoke_base=debian:bookworm-slim
	;;
*)
	k8s_log "CHURN_IMAGE_SOURCE must be local or upstream, not '$CHURN_IMAGE_SOURCE'"
	exit 2
	;;
esac
kubectl() { "$KUBECTL" --context "kind-$KIND_CLUSTER_NAME" "$@"; }

cluster_exists() { "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER_NAME"; }

# A cluster from an older local node image (other versions or node files) is replaced, not reused.
if cluster_exists && [[ -n "$node_image" ]]; then
	running_image="$(docker inspect --format '{{.Config.Image}}' "$KIND_CLUSTER_NAME-control-plane" 2>/dev/null || true)"
	if [[ "$running_image" != "$node_image" ]]; then
		step "cluster $KIND_CLUSTER_NAME runs node image '$running_image', not $node_image: recreating it"
		"$KIND" delete cluster --name "$KIND_CLUSTER_NAME"
	fi
fi
# A cluster that does not answer (e.g. its node came back with another address after a Docker
# restart, which invalidates the API server certificate) is replaced too.
if cluster_exists; then
	"$KIND" export kubeconfig --name "$KIND_CLUSTER_NAME"
	if ! kubectl get --raw /readyz --request-timeout 30s >/dev/null; then
		step "cluster $KIND_CLUSTER_NAME does not answer: recreating it"
		"$KIND" delete cluster --name "$KIND_CLUSTER_NAME"
	fi
fi
if cluster_exists; then
	step "cluster $KIND_CLUSTER_NAME exists; reusing it"
else
	step "creating cluster $KIND_CLUSTER_NAME"
	"$KIND" create cluster --name "$KIND_CLUSTER_NAME" "${node_image_args[@]}" --config "$KIND_CONFIG"
fi

step "waiting for nodes Ready and CoreDNS"
kubectl wait --for=condition=Ready node --all --timeout "$READY_TIMEOUT"
kubectl -n kube-system rollout status deployment/coredns --timeout "$READY_TIMEOUT"

if [[ "$KIND_SMOKE" == 1 ]]; then
	step "smoke test: a pod from an image built here"
	docker build --quiet -t "$SMOKE_IMAGE" - >/dev/null <<-DOCKERFILE
		FROM $smoke_base
		CMD ["sh", "-c", "echo smoke-ok from \$(hostname)"]
	DOCKERFILE
	"$KIND" load docker-image --name "$KIND_CLUSTER_NAME" "$SMOKE_IMAGE"
	kubectl delete pod kind-smoke --ignore-not-found --wait >/dev/null
	kubectl run kind-smoke --image "$SMOKE_IMAGE" --image-pull-policy Never --restart Never >/dev/null
	kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/kind-smoke --timeout "$READY_TIMEOUT"
	kubectl logs kind-smoke | grep -q '^smoke-ok from kind-smoke$' || {
		k8s_log "smoke pod ran but printed: $(kubectl logs kind-smoke)"
		exit 1
	}
	kubectl delete pod kind-smoke --wait=false >/dev/null
fi
step "cluster $KIND_CLUSTER_NAME ready (kubectl context kind-$KIND_CLUSTER_NAME)"
