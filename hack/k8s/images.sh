#!/usr/bin/env bash
# Builds the images a kind node preloads, from binaries built by hack/k8s/build.sh:
#   the control-plane images under the names kubeadm $KUBERNETES_VERSION uses (registry.k8s.io/...),
#   kube-router (CNI + NetworkPolicy) and local-path-provisioner (default StorageClass).
# Static binaries go on the local Debian base image (a shell helps debugging; the layer is shared),
# the network agents on a Debian image with iptables/ipset, pause FROM scratch. Prints the tags.
# Existing tags are kept (FORCE=1 rebuilds).
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
FORCE="${FORCE:-0}"

# build_image TAG BASE BINARY [ENTRYPOINT_JSON [USER]]: one binary in /usr/local/bin (or / on scratch).
build_image() {
	local tag="$1" base="$2" binary="$3" entrypoint="${4:-}" user="${5:-}" context dest=/usr/local/bin
	if [[ "$FORCE" != 1 ]] && image_exists "$tag"; then return; fi
	k8s_log "building $tag"
	[[ "$base" == scratch ]] && dest=
	context="$(mktemp -d)"
	cp "$K8S_BIN_DIR/$binary" "$context/"
	{
		echo "FROM $base"
		echo "COPY $binary $dest/$binary"
		[[ -n "$entrypoint" ]] && echo "ENTRYPOINT $entrypoint"
		[[ -n "$user" ]] && echo "USER $user"
	} >"$context/Dockerfile"
	docker build --quiet -t "$tag" "$context" >/dev/null
	rm -rf "$context"
}

build_net_base() {
	if [[ "$FORCE" != 1 ]] && image_exists "$NET_BASE_IMAGE"; then return; fi
	k8s_log "building $NET_BASE_IMAGE"
	docker build --quiet --network host -t "$NET_BASE_IMAGE" -f - "$K8S_HACK_DIR" >/dev/null <<-EOF
		FROM $CHURN_DEBIAN_BASE_IMAGE
		RUN apt-get update -q \\
		 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \\
		      iptables ipset iproute2 conntrack kmod \\
		 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
	EOF
}

# kubeadm pins etcd/CoreDNS/pause per release; versions.env must agree or the build is wrong.
check_pinned() {
	local image="$1" expected="$2"
	if [[ "$image" != *":$expected" ]]; then
		k8s_log "kubeadm $KUBERNETES_VERSION wants $image but hack/versions.env pins $expected"
		exit 1
	fi
}

bash "$REPO_DIR/hack/base-image.sh"
bash "$K8S_HACK_DIR/build.sh" kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubeadm \
	etcd coredns pause kube-router local-path-provisioner
build_net_base
for image in $(kubeadm_images); do
	name="${image##*/}"
	name="${name%%:*}"
	case "$name" in
	kube-apiserver | kube-controller-manager | kube-scheduler) build_image "$image" "$CHURN_DEBIAN_BASE_IMAGE" "$name" ;;
	kube-proxy) build_image "$image" "$NET_BASE_IMAGE" kube-proxy ;;
	etcd)
		check_pinned "$image" "${ETCD_VERSION#v}-0"
		build_image "$image" "$CHURN_DEBIAN_BASE_IMAGE" etcd
		;;
	coredns)
		check_pinned "$image" "$COREDNS_VERSION"
		# kubeadm's CoreDNS Deployment passes only arguments.
		build_image "$image" "$CHURN_DEBIAN_BASE_IMAGE" coredns '["/usr/local/bin/coredns"]'
		;;
	pause)
		check_pinned "$image" "$PAUSE_VERSION"
		build_image "$image" scratch pause '["/pause"]' 65535:65535
		;;
	*)
		k8s_log "kubeadm lists $image, which this script does not know how to build"
		exit 1
		;;
	esac
	echo "$image"
done
build_image "$KUBE_ROUTER_IMAGE" "$NET_BASE_IMAGE" kube-router
echo "$KUBE_ROUTER_IMAGE"
build_image "$LOCAL_PATH_PROVISIONER_IMAGE" "$CHURN_DEBIAN_BASE_IMAGE" local-path-provisioner
echo "$LOCAL_PATH_PROVISIONER_IMAGE"
