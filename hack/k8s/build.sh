#!/usr/bin/env bash
# Builds Kubernetes components from their Go modules (Go module proxy only), static (CGO_ENABLED=0).
#   usage: hack/k8s/build.sh [COMPONENT...]      default: the Kubernetes set below
#   Kubernetes set: kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet
#                   kubeadm kubectl etcd coredns
#   node image and add-ons: crictl kube-router local-path-provisioner pause (hack/k8s/pause) kind
# Binaries land in $CHURN_CACHE/k8s/$KUBERNETES_VERSION/bin (printed at the end); ones already there
# are skipped. etcd, CoreDNS and pause are the versions kubeadm $KUBERNETES_VERSION deploys and the
# add-ons are pinned in hack/versions.env, so the Kubernetes version keys the directory. Go caches
# live under $CHURN_CACHE/go and survive clean clones.
set -euo pipefail
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "$0")/lib.sh"
K8S_DIR="$CHURN_CACHE/k8s/$KUBERNETES_VERSION"
BIN_DIR="$K8S_BIN_DIR"
KUBERNETES_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl etcd coredns)

# The proxy only: "direct" would clone from source hosts, which this machine must not contact.
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
export GOMODCACHE="$CHURN_CACHE/go/mod" GOCACHE="$CHURN_CACHE/go/build"
export CGO_ENABLED=0 GOFLAGS="-mod=mod -trimpath -buildvcs=false"

# The wrapper module that builds a component (components of one wrapper share a `go build`).
wrapper_of() {
	case "$1" in
	kube-apiserver | kube-controller-manager | kube-scheduler | kube-proxy | kubelet | kubeadm | kubectl) echo kubernetes ;;
	etcd | coredns | crictl | kube-router | local-path-provisioner | pause | kind) echo "$1" ;;
	*)
		k8s_log "unknown component '$1' (known: ${KUBERNETES_COMPONENTS[*]} crictl kube-router local-path-provisioner pause kind)"
		exit 2
		;;
	esac
}

# Module and version a single-module wrapper requires.
module_of() {
	case "$1" in
	etcd) echo "go.etcd.io/etcd/server/v3 $ETCD_VERSION" ;;
	coredns) echo "github.com/coredns/coredns $COREDNS_VERSION" ;;
	crictl) echo "sigs.k8s.io/cri-tools $CRI_TOOLS_VERSION" ;;
	kube-router) echo "github.com/cloudnativelabs/kube-router/v2 $KUBE_ROUTER_VERSION" ;;
	local-path-provisioner) echo "github.com/rancher/local-path-provisioner $LOCAL_PATH_PROVISIONER_VERSION" ;;
	kind) echo "sigs.k8s.io/kind $KIND_VERSION" ;;
	esac
}

main_package_of() {
	case "$1" in
	etcd) echo "go.etcd.io/etcd/server/v3" ;;
	crictl) echo "sigs.k8s.io/cri-tools/cmd/crictl" ;;
	kube-router) echo "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router" ;;
	pause) echo "churn.local/pause" ;;
	kube-apiserver | kube-controller-manager | kube-scheduler | kube-proxy | kubelet | kubeadm | kubectl)
		echo "k8s.io/kubernetes/cmd/$1"
		;;
	*) module_of "$1" | cut -d' ' -f1 ;;
	esac
}

# k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at v0.0.0 and points them at
# ./staging with replace directives that only apply inside its own repo. A wrapper module requires
# it and replaces each staging module with its published v0.<minor>.<patch>.
write_kubernetes_wrapper() {
	local dir="$1" kube_gomod staging_version="v0${KUBERNETES_VERSION#v1}"
	kube_gomod="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')"
	{
		printf 'module churn.local/k8s-build\n\ngo 1.24\n\nrequire k8s.io/kubernetes %s\n\n' "$KUBERNETES_VERSION"
		awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" { print $1 }' "$kube_gomod" | sort -u |
			awk -v v="$staging_version" '{ printf "replace %s => %s %s\n", $1, $1, v }'
	} >"$dir/go.mod"
}

write_single_wrapper() {
	local dir="$1" module version
	read -r module version < <(module_of "$(basename "$dir")")
	printf 'module churn.local/%s-build\n\ngo 1.24\n\nrequire %s %s\n' "$(basename "$dir")" "$module" "$version" >"$dir/go.mod"
}

# The wrapper's directory: pause is this repo's own module, the others are generated.
wrapper_dir() {
	if [[ "$1" == pause ]]; then echo "$K8S_HACK_DIR/pause"; else echo "$K8S_DIR/src/$1"; fi
}

ensure_wrapper() {
	local name="$1" dir
	dir="$(wrapper_dir "$name")"
	[[ -f "$dir/go.mod" ]] && return
	mkdir -p "$dir"
	if [[ "$name" == kubernetes ]]; then write_kubernetes_wrapper "$dir"; else write_single_wrapper "$dir"; fi
}

# Version stamps the release build sets, so that kubeadm/kubelet/kubectl report the real version
# (kubeadm derives image tags and kubelet compatibility from it).
kubernetes_ldflags() {
	local minor="${KUBERNETES_VERSION#v1.}" build_date pkg flags="-s -w"
	minor="${minor%%.*}"
	build_date="$(go list -m -f '{{.Time.Format "2006-01-02T15:04:05Z"}}' "k8s.io/kubernetes@$KUBERNETES_VERSION")"
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
		flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
	done
	echo "$flags"
}

# go build names a binary after its package's last path element, skipping a major-version
# suffix: go.etcd.io/etcd/server/v3 becomes "server".
go_binary_name() {
	local name
	name="$(basename "$1")"
	[[ "$name" =~ ^v[0-9]+$ ]] && name="$(basename "$(dirname "$1")")"
	echo "$name"
}

# Builds the given components of one wrapper in one `go build`, so shared packages compile once.
build_group() {
	local wrapper="$1" ldflags="-s -w" started=$SECONDS component packages=()
	shift
	ensure_wrapper "$wrapper"
	[[ "$wrapper" == kubernetes ]] && ldflags="$(kubernetes_ldflags)"
	for component in "$@"; do packages+=("$(main_package_of "$component")"); done
	k8s_log "building $* (cold builds take minutes on 2 cores; go output follows)"
	local out="$K8S_DIR/tmp.$wrapper"
	rm -rf "$out" && mkdir -p "$out"
	(cd "$(wrapper_dir "$wrapper")" && nice -n 10 go build -ldflags "$ldflags" -o "$out/" "${packages[@]}")
	local built
	for component in "$@"; do
		built="$out/$(go_binary_name "$(main_package_of "$component")")"
		mv "$built" "$BIN_DIR/$component"
	done
	rm -rf "$out"
	k8s_log "built $* in $((SECONDS - started))s"
}

components=("$@")
((${#components[@]})) || components=("${KUBERNETES_COMPONENTS[@]}")
mkdir -p "$BIN_DIR"
# Several scripts call this one (CI steps may overlap): one build per version directory at a time.
exec 9>"$K8S_DIR/.build.lock"
flock 9
declare -A missing_by_wrapper=()
for component in "${components[@]}"; do
	wrapper="$(wrapper_of "$component")"
	[[ -x "$BIN_DIR/$component" ]] && continue
	missing_by_wrapper[$wrapper]+="$component "
done
for wrapper in "${!missing_by_wrapper[@]}"; do
	# shellcheck disable=SC2086 # the list is space-separated component names.
	build_group "$wrapper" ${missing_by_wrapper[$wrapper]}
done
k8s_log "ready in $BIN_DIR: ${components[*]}"
