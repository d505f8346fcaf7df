#!/usr/bin/env bash
# Builds the kind node image from local parts only and prints its tag:
#   1. Debian $DEBIAN_SUITE (hack/base-image.sh) + systemd, containerd, runc, CNI plugins from
#      Debian, and kubelet/kubeadm/kubectl from hack/k8s/build.sh (hack/k8s/node/Dockerfile);
#   2. the images of hack/k8s/images.sh preloaded into containerd's k8s.io namespace by running
#      containerd in a container of that image and committing the result.
# The tag (lib.sh node_image) hashes the node files and versions; an existing tag is reused
# (FORCE=1 rebuilds).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
FORCE="${FORCE:-0}"
NODE_IMAGE="$(node_image)"
STAGE1_IMAGE="${NODE_IMAGE/kind-node:/kind-node-stage1:}"

# Docker build context: the node directory plus binaries, /kind/version and filled-in manifests.
write_context() {
	local context="$1"
	cp -r "$K8S_HACK_DIR/node/Dockerfile" "$K8S_HACK_DIR/node/files" "$K8S_HACK_DIR/runc-bounded" "$context/"
	sed -i "s/@PAUSE_VERSION@/$PAUSE_VERSION/" "$context/files/etc/containerd/config.toml"
	mkdir -p "$context/bin" "$context/kind/manifests"
	cp "$K8S_BIN_DIR/kubelet" "$K8S_BIN_DIR/kubeadm" "$K8S_BIN_DIR/kubectl" "$K8S_BIN_DIR/crictl" "$context/bin/"
	# kind reads the node's Kubernetes version from here to pick its kubeadm config format.
	echo "$KUBERNETES_VERSION" >"$context/kind/version"
	sed "s|@KUBE_ROUTER_IMAGE@|$KUBE_ROUTER_IMAGE|g" \
		"$K8S_HACK_DIR/node/manifests/default-cni.yaml" >"$context/kind/manifests/default-cni.yaml"
	sed -e "s|@LOCAL_PATH_PROVISIONER_IMAGE@|$LOCAL_PATH_PROVISIONER_IMAGE|g" \
		-e "s|@HELPER_IMAGE@|$CHURN_DEBIAN_BASE_IMAGE|g" \
		"$K8S_HACK_DIR/node/manifests/default-storage.yaml" >"$context/kind/manifests/default-storage.yaml"
}

build_stage1() {
	local context
	context="$(mktemp -d)"
	write_context "$context"
	k8s_log "building $STAGE1_IMAGE"
	docker build --quiet --network host --build-arg BASE_IMAGE="$CHURN_DEBIAN_BASE_IMAGE" \
		-t "$STAGE1_IMAGE" "$context" >/dev/null
	rm -rf "$context"
}

# Imports without unpacking (as kind does): only the content store is filled, so no overlay mount
# is needed inside the build container; containerd unpacks on first use in the running node.
# The pinned label keeps the kubelet's image GC away from them (ctr 1.6 cannot set it on import).
preload_images() {
	local images=("$@") builder
	k8s_log "preloading ${#images[@]} images into containerd (k8s.io namespace)"
	builder="$(docker run -d --privileged --entrypoint containerd "$STAGE1_IMAGE")"
	# shellcheck disable=SC2064 # expand now: remove this builder container on any exit.
	trap "docker rm -f '$builder' >/dev/null" EXIT
	local waited=0
	until docker exec "$builder" ctr version >/dev/null 2>&1; do
		((++waited < 60)) || { k8s_log "containerd did not start in the builder"; docker logs "$builder" >&2; exit 1; }
		sleep 1
	done
	docker save "${images[@]}" |
		docker exec -i "$builder" ctr --namespace k8s.io images import --no-unpack --all-platforms --digests - >/dev/null
	docker exec "$builder" bash -c 'for image in $(ctr --namespace k8s.io images list -q); do
		ctr --namespace k8s.io images label "$image" io.cri-containerd.pinned=pinned >/dev/null
	done'
	docker exec "$builder" ctr --namespace k8s.io images list -q | grep -v '^sha256:' | sort >&2
	docker stop "$builder" >/dev/null
	docker commit --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' \
		--message "kind node $KUBERNETES_VERSION with preloaded images" "$builder" "$NODE_IMAGE" >/dev/null
	docker rm -f "$builder" >/dev/null
	trap - EXIT
}

# One node image build at a time; a waiting caller then finds the image built.
mkdir -p "$CHURN_CACHE/k8s"
exec 9>"$CHURN_CACHE/k8s/.node-image.lock"
flock 9
if [[ "$FORCE" == 1 ]] || ! image_exists "$NODE_IMAGE"; then
	started=$SECONDS
	bash "$K8S_HACK_DIR/build.sh" kubelet kubeadm kubectl crictl
	mapfile -t preload < <(bash "$K8S_HACK_DIR/images.sh")
	preload+=("$CHURN_DEBIAN_BASE_IMAGE")
	build_stage1
	preload_images "${preload[@]}"
	docker rmi "$STAGE1_IMAGE" >/dev/null
	k8s_log "built $NODE_IMAGE in $((SECONDS - started))s"
	# Older node images are 1.4 GB each; Docker refuses to remove one a cluster still runs on.
	docker images --format '{{.Repository}}:{{.Tag}}' "${NODE_IMAGE%%:*}" | grep -vx "$NODE_IMAGE" |
		xargs -r docker rmi >/dev/null 2>&1 || true
fi
echo "$NODE_IMAGE"
