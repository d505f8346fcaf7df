#!/usr/bin/env bash
# Builds the container images the in-cluster stack needs, offline: Go programs from the Go module
# proxy, Python servers from PyPI, on the local Debian base images (hack/base-image.sh).
#
#   hack/images/build.sh [name...]      all images by default; names: see hack/images/catalog.sh
#
# Each image carries a build-key label (hash of its versions and recipe); an image whose key
# matches is skipped, so re-runs and clean clones on the same machine are cheap.
#   CHURN_IMAGE_SOURCE=local     (default) build everything here
#   CHURN_IMAGE_SOURCE=upstream  pull the images registries publish, build only the rest
#   FORCE=1                      rebuild even when the key matches
# Go builds use GOMODCACHE/GOCACHE under $CHURN_CACHE/go and run under `nice`.
set -euo pipefail
shopt -s inherit_errexit
# shellcheck source=SCRIPTDIR/catalog.sh
source "$(dirname "$0")/catalog.sh"
# shellcheck source=SCRIPTDIR/../upstream.sh
source "$REPO_ROOT/hack/upstream.sh"
FORCE="${FORCE:-0}"
BUILD_KEY_LABEL=io.churn.build-key
GO_BIN_CACHE="$CHURN_CACHE/images/go-bin"
PROGRESS_INTERVAL_SECONDS="${PROGRESS_INTERVAL_SECONDS:-60}"

export GOMODCACHE="$CHURN_CACHE/go/mod" GOCACHE="$CHURN_CACHE/go/build"
# GOWORK=off: some module zips (prometheus) carry a go.work naming nested modules they leave out.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"

log() { images_log "$@"; }

case "$CHURN_IMAGE_SOURCE" in
local | upstream) ;;
*)
	echo "build.sh: CHURN_IMAGE_SOURCE must be local or upstream, not '$CHURN_IMAGE_SOURCE'" >&2
	exit 2
	;;
esac

# Runs a long command with its output in LOG, printing a line every PROGRESS_INTERVAL_SECONDS.
run_logged() {
	local what="$1" logfile="$2" pid status started=$SECONDS
	shift 2
	"$@" >"$logfile" 2>&1 &
	pid=$!
	while ! wait_for_exit "$pid" "$PROGRESS_INTERVAL_SECONDS"; do
		log "  ... $what: $((SECONDS - started))s, $(wc -l <"$logfile") log lines ($logfile)"
	done
	status=0
	wait "$pid" || status=$?
	if ((status != 0)); then
		log "  $what failed (exit $status); last lines of $logfile:"
		tail -n 40 "$logfile" >&2
	fi
	return "$status"
}

# Returns 0 once PID has exited, 1 if it is still running after SECONDS.
wait_for_exit() {
	local pid="$1" deadline=$((SECONDS + $2))
	while kill -0 "$pid" 2>/dev/null; do
		((SECONDS < deadline)) || return 1
		sleep 1
	done
}

sha() { sha256sum | cut -c1-16; }

image_key() { docker image inspect --format "{{index .Config.Labels \"$BUILD_KEY_LABEL\"}}" "$1" 2>/dev/null || true; }

image_size() { docker image inspect --format '{{.Size}}' "$1" | awk '{printf "%.0f MB", $1 / 1e6}'; }

# --- Go programs --------------------------------------------------------------------------------

# Prints a directory where `go build` of MODULE@VERSION works as the main module, so the module's
# own replace directives apply. Usually that is the read-only module cache; modules whose go.mod
# replaces nested modules with local paths (which module zips leave out) get a writable copy with
# those nested modules, fetched from the proxy at the same version, put back in place.
module_source_dir() {
	local module="$1" version="$2" dir local_replaces src old new subdir
	dir="$(cd / && go mod download -json "$module@$version" | jq -r .Dir)"
	local_replaces="$(go mod edit -json "$dir/go.mod" |
		jq -r '.Replace[]? | select(.New.Path | startswith("./") or startswith("../")) | "\(.Old.Path) \(.New.Path)"')"
	if [[ -z "$local_replaces" ]]; then
		echo "$dir"
		return
	fi
	src="$CHURN_CACHE/go/src/${module//\//_}@$version"
	if [[ ! -f "$src/.complete" ]]; then
		rm -rf "$src"
		mkdir -p "$src"
		cp -r "$dir/." "$src/"
		while read -r old new; do
			subdir="$(cd / && go mod download -json "$old@$version" | jq -r .Dir)"
			mkdir -p "$src/$new"
			cp -r "$subdir/." "$src/$new/"
		done <<<"$local_replaces"
		chmod -R u+w "$src"
		touch "$src/.complete"
	fi
	echo "$src"
}

# Compiles PACKAGE of MODULE@VERSION once per (version, ldflags, build tags, Go version); prints
# the binary path.
go_binary() {
	local module="$1" version="$2" package="$3" ldflags="$4" tags="${5:-}" key out src name
	key="$(printf '%s\n' "$module" "$version" "$package" "$ldflags" ${tags:+"$tags"} "$(go env GOVERSION)" | sha)"
	name="$(basename "$module/$package")"
	[[ "$package" == . ]] && name="$(basename "$module")"
	out="$GO_BIN_CACHE/$name-$version-$key"
	if [[ ! -x "$out" ]]; then
		mkdir -p "$GO_BIN_CACHE"
		src="$(module_source_dir "$module" "$version")"
		log "  go build $module@$version ./$package"
		(cd "$src" && run_logged "go build $name" "$out.log" \
			nice -n 10 go build -v -tags "$tags" -ldflags "-s -w $ldflags" -o "$out.tmp" "./$package")
		mv "$out.tmp" "$out"
	fi
	echo "$out"
}

# The VCS revision the proxy recorded for a tagged module version (empty for pseudo-versions).
module_revision() {
	(cd / && go mod download -json "$1@$2" | jq -r '.Origin.Hash // empty')
}

# Prometheus v3.X.Y is published as Go module version v0.3XX.Y.
prometheus_module_version() {
	local major minor patch
	IFS=. read -r major minor patch <<<"${1#v}"
	printf 'v0.%d%02d.%d' "$major" "$minor" "$patch"
}

# The ldflags that stamp github.com/prometheus/common/version (prometheus and prometheus-operator).
prometheus_common_ldflags() {
	local pkg=github.com/prometheus/common/version
	echo "-X $pkg.Version=${1#v} -X $pkg.Revision=$2 -X $pkg.Branch=HEAD -X $pkg.BuildUser=churn-images"
}

# MinIO and mc stamp their release from the commit time in the pseudo-version.
minio_ldflags() {
	local pkg="$1" version="$2" stamp release_time
	stamp="$(cut -d- -f2 <<<"$version")"
	release_time="${stamp:0:4}-${stamp:4:2}-${stamp:6:2}T${stamp:8:2}:${stamp:10:2}:${stamp:12:2}Z"
	echo "-X $pkg.Version=$release_time -X $pkg.ReleaseTag=DEVELOPMENT.${release_time//:/-}" \
		"-X $pkg.CommitID=${version##*-} -X $pkg.ShortCommitID=${version##*-} -X $pkg.CopyrightYear=${stamp:0:4}"
}

# Sets GO_FILES ("host-path in-image-path" lines: binaries, config files) and GO_CHANGES
# (docker import --change instructions) for a Go image. Entry points, working directories and
# ports match the upstream images.
go_image_recipe() {
	local module version revision
	GO_CHANGES=()
	case "$1" in
	kserve-controller)
		GO_FILES="$(go_binary github.com/kserve/kserve "$KSERVE_VERSION" cmd/manager "") /manager"
		GO_CHANGES=('ENTRYPOINT ["/manager"]')
		;;
	prometheus-operator | prometheus-config-reloader)
		module=github.com/prometheus-operator/prometheus-operator
		revision="$(module_revision "$module" "$PROMETHEUS_OPERATOR_VERSION")"
		local command=operator
		[[ "$1" == prometheus-config-reloader ]] && command=prometheus-config-reloader
		GO_FILES="$(go_binary "$module" "$PROMETHEUS_OPERATOR_VERSION" "cmd/$command" \
			"$(prometheus_common_ldflags "$PROMETHEUS_OPERATOR_VERSION" "$revision")") /bin/$command"
		GO_CHANGES=("ENTRYPOINT [\"/bin/$command\"]")
		;;
	prometheus)
		module=github.com/prometheus/prometheus
		version="$(prometheus_module_version "$PROMETHEUS_VERSION")"
		revision="$(module_revision "$module" "$version")"
		# No `builtinassets` tag: the web UI needs an npm build; the HTTP API is complete without it.
		# Only Kubernetes service discovery (all prometheus-operator generates): upstream's own
		# build tags leave out the cloud SDKs; a cold build takes ~2 min on 2 cores.
		GO_FILES="$(go_binary "$module" "$version" cmd/prometheus \
			"$(prometheus_common_ldflags "$PROMETHEUS_VERSION" "$revision")" \
			remove_all_sd,enable_kubernetes_sd) /bin/prometheus"
		# The example config upstream ships, so a bare `docker run` starts (it scrapes itself).
		GO_FILES+=$'\n'"$(module_source_dir "$module" "$version")/documentation/examples/prometheus.yml /etc/prometheus/prometheus.yml"
		GO_CHANGES=('ENTRYPOINT ["/bin/prometheus"]'
			'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
			'WORKDIR /prometheus' 'VOLUME ["/prometheus"]' 'EXPOSE 9090')
		;;
	metrics-server)
		module=sigs.k8s.io/metrics-server
		revision="$(module_revision "$module" "$METRICS_SERVER_VERSION")"
		# metrics-server reports client-go's version variables.
		local version_pkg=k8s.io/client-go/pkg/version
		GO_FILES="$(go_binary "$module" "$METRICS_SERVER_VERSION" cmd/metrics-server \
			"-X $version_pkg.gitVersion=$METRICS_SERVER_VERSION -X $version_pkg.gitCommit=$revision") /metrics-server"
		GO_CHANGES=('ENTRYPOINT ["/metrics-server"]')
		;;
	traefik)
		module=github.com/traefik/traefik/v3
		GO_FILES="$(go_binary "$module" "$TRAEFIK_VERSION" cmd/traefik \
			"-X $module/pkg/version.Version=$TRAEFIK_VERSION") /usr/local/bin/traefik"
		GO_CHANGES=('ENTRYPOINT ["/usr/local/bin/traefik"]' 'EXPOSE 80')
		;;
	minio)
		GO_FILES="$(go_binary github.com/minio/minio "$MINIO_VERSION" . \
			"$(minio_ldflags github.com/minio/minio/cmd "$MINIO_VERSION")") /usr/bin/minio"
		GO_FILES+=$'\n'"$(go_binary github.com/minio/mc "$MC_VERSION" . \
			"$(minio_ldflags github.com/minio/mc/cmd "$MC_VERSION")") /usr/bin/mc"
		GO_CHANGES=('ENTRYPOINT ["/usr/bin/minio"]' 'CMD ["server", "/data"]' 'ENV PATH=/usr/bin'
			'ENV MINIO_CONFIG_ENV_FILE=/etc/config.env' 'VOLUME ["/data"]' 'EXPOSE 9000')
		;;
	*) return 1 ;;
	esac
}

is_go_image() { [[ " kserve-controller prometheus-operator prometheus-config-reloader prometheus metrics-server traefik minio " == *" $1 "* ]]; }

# A FROM-scratch image: the static binaries (and config files) of GO_FILES, the host's CA
# bundle, a non-root user (65532, as distroless "nonroot") with its home, a writable /tmp and
# data directories (/data for MinIO, /prometheus).
import_go_image() {
	local name="$1" ref="$2" key="$3" rootfs file target change
	local -a change_args=()
	rootfs="$(mktemp -d "$CHURN_CACHE/tmp.$name.XXXXXX")"
	mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$rootfs/home/nonroot" "$rootfs/data" "$rootfs/prometheus"
	while read -r file target; do
		if [[ -x "$file" ]]; then
			install -D -m 0755 "$file" "$rootfs$target"
		else
			install -D -m 0644 "$file" "$rootfs$target"
		fi
	done <<<"$GO_FILES"
	cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
	chmod 1777 "$rootfs/tmp"
	chown 65532:65532 "$rootfs/home/nonroot" "$rootfs/data" "$rootfs/prometheus"
	for change in "${GO_CHANGES[@]}" 'USER 65532:65532' "LABEL $BUILD_KEY_LABEL=$key" \
		"LABEL org.opencontainers.image.title=$name" "LABEL org.opencontainers.image.version=${ref##*:}"; do
		change_args+=(--change "$change")
	done
	tar -C "$rootfs" --numeric-owner --sort=name --mtime=@0 -c . |
		docker import "${change_args[@]}" --message "churn images: $name from Go sources" - "$ref" >/dev/null
	rm -rf "$rootfs"
}

# --- Python images ------------------------------------------------------------------------------

# Prints "context dockerfile paths..." for a Python image: the files its build reads, for the key.
python_image_layout() {
	case "$1" in
	storage-initializer | mlflow) echo "$IMAGES_DIR/$1 $IMAGES_DIR/$1/Dockerfile hack/images/$1" ;;
	kserve-sklearnserver) echo "$(stage_sklearnserver_context) $IMAGES_DIR/$1/Dockerfile hack/images/$1" ;;
	transformer) echo "$REPO_ROOT $REPO_ROOT/Dockerfile.transformer Dockerfile.transformer .dockerignore pyproject.toml uv.lock model transformer" ;;
	training) echo "$REPO_ROOT $REPO_ROOT/Dockerfile.train Dockerfile.train .dockerignore pyproject.toml uv.lock model training" ;;
	*) return 1 ;;
	esac
}

# KServe's sklearnserver package is read from the pinned upstream sources at build time, never
# committed: the build context is its requirements.txt plus that package and its LICENSE,
# staged in a scratch directory.
stage_sklearnserver_context() {
	local upstream context
	upstream="$(upstream_dir)/kserve-$KSERVE_VERSION/python"
	context="$(mktemp -d "$CHURN_CACHE/tmp.sklearnserver.XXXXXX")"
	cp "$IMAGES_DIR/kserve-sklearnserver/requirements.txt" "$upstream/LICENSE" "$context/"
	cp -r "$upstream/sklearnserver/sklearnserver" "$context/sklearnserver"
	find "$context/sklearnserver" -name __pycache__ -prune -exec rm -rf {} +
	echo "$context"
}

# Hash of the working-tree content of PATHS (git-visible files: tracked or untracked, not ignored).
files_hash() {
	(cd "$REPO_ROOT" && git ls-files -z --cached --others --exclude-standard -- "$@" |
		LC_ALL=C sort -zu | xargs -0 sha256sum) | sha
}

# --- driver -------------------------------------------------------------------------------------

# Both are idempotent and return at once when the engine runs and the base images exist.
ensure_docker() { bash "$REPO_ROOT/hack/docker.sh"; }
# FORCE=0: FORCE=1 rebuilds the images named here, not the shared base under each of them.
ensure_python_base() { FORCE=0 bash "$REPO_ROOT/hack/base-image.sh"; }

# Builds (or skips, or pulls) one image; prints its status word.
build_image() {
	local name="$1" ref key context dockerfile paths
	local -a build_args=()
	ref="$(image_ref "$name")"
	if [[ "$CHURN_IMAGE_SOURCE" == upstream ]] && image_is_published "$name"; then
		ensure_docker
		log "$name: docker pull $ref"
		docker pull "$ref" >&2
		echo pulled
		return
	fi
	if is_go_image "$name"; then
		go_image_recipe "$name"
		key="$( (printf '%s\n' "$ref" "${GO_CHANGES[@]}"; awk '{print $1}' <<<"$GO_FILES" | xargs -n1 basename;
			sed -n '/^import_go_image()/,/^}/p' "$0") | sha)"
		ensure_docker
		if [[ "$FORCE" != 1 && "$(image_key "$ref")" == "$key" ]]; then
			echo skipped
			return
		fi
		import_go_image "$name" "$ref" "$key"
		echo built
		return
	fi
	read -r context dockerfile paths <<<"$(python_image_layout "$name")"
	# build_image runs in its own subshell: the trap removes a staged context when it ends.
	# shellcheck disable=SC2064 # expand now
	[[ "$context" == "$CHURN_CACHE"/tmp.* ]] && trap "rm -rf '$context'" EXIT
	case "$name" in transformer | training) ;; *) bash "$IMAGES_DIR/lock.sh" --check "$name" ;; esac
	ensure_docker
	if [[ "$CHURN_IMAGE_SOURCE" == local ]]; then
		ensure_python_base
		build_args+=(--build-arg "BASE_IMAGE=$CHURN_PYTHON_BASE_IMAGE")
	fi
	# shellcheck disable=SC2086 # paths is a list of pathspecs
	key="$( (files_hash $paths; printf '%s\n' "${build_args[@]}";
		[[ "$context" == "$CHURN_CACHE"/tmp.* ]] && (cd "$context" && find . -type f | LC_ALL=C sort | xargs sha256sum);
		[[ "$CHURN_IMAGE_SOURCE" == local ]] && docker image inspect --format '{{.Id}}' "$CHURN_PYTHON_BASE_IMAGE") | sha)"
	if [[ "$FORCE" != 1 && "$(image_key "$ref")" == "$key" ]]; then
		echo skipped
		return
	fi
	# --network host: pip and apt inside the build reach the package registries like the host does.
	run_logged "docker build $name" "$CHURN_CACHE/images/$name.build.log" \
		nice -n 10 docker build --network host "${build_args[@]}" --label "$BUILD_KEY_LABEL=$key" \
		--label "org.opencontainers.image.version=${ref##*:}" -f "$dockerfile" -t "$ref" "$context" >&2
	echo built
}

main() {
	local name status started status_file failed=0
	local -a names=("$@") summary=()
	status_file="$(mktemp)"
	# shellcheck disable=SC2064 # expand now: remove this file
	trap "rm -f '$status_file'" EXIT
	((${#names[@]})) || names=("${ALL_IMAGES[@]}")
	for name in "${names[@]}"; do image_ref "$name" >/dev/null; done
	mkdir -p "$CHURN_CACHE/images"
	log "building ${#names[@]} image(s) (source: $CHURN_IMAGE_SOURCE): ${names[*]}"
	for name in "${names[@]}"; do
		started=$SECONDS
		log "$name: $(image_ref "$name")"
		# In the background, not in an `if`: errexit must stay in force inside build_image.
		build_image "$name" >"$status_file" &
		if wait $!; then
			status="$(cat "$status_file")"
		else
			status=FAILED
			failed=1
		fi
		summary+=("$(printf '%-28s %-8s %5ss  %s' "$name" "$status" "$((SECONDS - started))" \
			"$( [[ "$status" == FAILED ]] || image_size "$(image_ref "$name")")")")
		log "$name: $status in $((SECONDS - started))s"
	done
	log "summary (name, status, seconds, size):"
	printf '  %s\n' "${summary[@]}" >&2
	return "$failed"
}

main "$@"
