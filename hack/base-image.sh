#!/usr/bin/env bash
# Builds the local base images that replace registry images on machines without an image registry:
#   $CHURN_DEBIAN_BASE_IMAGE  debootstrap --variant=minbase of Debian $DEBIAN_SUITE, imported into Docker
#   $CHURN_PYTHON_BASE_IMAGE  that plus Debian's python3 + pip, laid out like python:*-slim (python, pip
#                             on PATH, system-wide pip installs allowed); pass it as --build-arg BASE_IMAGE=...
# Bookworm's python3 is 3.11 (the project supports >=3.11). The host's extra CAs
# (/usr/local/share/ca-certificates) are copied in, so these images are for this machine only: never
# push them. Skips images that already exist (FORCE=1 rebuilds). Packages come from the Debian mirror
# apt is configured with; nothing is pulled from a registry.
set -euo pipefail
HACK_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=SCRIPTDIR/versions.env
source "$HACK_DIR/versions.env"
CHURN_CACHE="${CHURN_CACHE:-$HOME/.cache/churn-serving}"
FORCE="${FORCE:-0}"

# docker import records no PATH; Docker supplies a default at run time but containerd (kind) does not.
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'base-image: %s\n' "$*" >&2; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The mirror apt already uses for $DEBIAN_SUITE (deb822 .sources or one-line .list), so the image is
# built from the same place as the host's packages.
configured_mirror() {
	local file
	for file in /etc/apt/sources.list.d/*.sources; do
		[[ -f "$file" ]] || continue
		awk -v suite="$DEBIAN_SUITE" '
			/^URIs:/ { uri = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = uri }
			/^$/ { uri = "" }
			END { if (found) print found }' "$file"
	done
	for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f "$file" ]] || continue
		awk -v suite="$DEBIAN_SUITE" '$1 == "deb" { sub(/\[[^]]*\] /, ""); if ($3 == suite) print $2 }' "$file"
	done
}

build_debian_base() {
	local mirror rootfs
	mirror="${DEBIAN_MIRROR:-$(configured_mirror | head -n 1)}"
	[[ -n "$mirror" ]] || { log "no apt source for $DEBIAN_SUITE found; set DEBIAN_MIRROR"; exit 1; }
	command -v debootstrap >/dev/null || {
		log "installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
	}
	rootfs="$(mktemp -d "$CHURN_CACHE/tmp.rootfs.XXXXXX")"
	# shellcheck disable=SC2064 # expand now: the trap must remove this rootfs, not a later one.
	trap "rm -rf '$rootfs'" EXIT
	log "debootstrap $DEBIAN_SUITE (minbase) from $mirror"
	debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
		tail -n 30 "$rootfs.log" >&2
		exit 1
	}
	rm -f "$rootfs.log"
	cat >"$rootfs/etc/apt/sources.list" <<-EOF
		deb $mirror $DEBIAN_SUITE main
		deb $mirror $DEBIAN_SUITE-updates main
	EOF
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	# Extra CAs the host trusts (e.g. a TLS-inspecting egress proxy in front of the package registries);
	# ca-certificates, once installed in an image, folds them into its bundle so pip/go can reach PyPI.
	cp -a /usr/local/share/ca-certificates/. "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
	log "importing as $CHURN_DEBIAN_BASE_IMAGE"
	tar -C "$rootfs" --numeric-owner -c . |
		docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' --change "ENV PATH=$IMAGE_PATH" \
			--message "debootstrap --variant=minbase $DEBIAN_SUITE $(date -u +%F)" - "$CHURN_DEBIAN_BASE_IMAGE" >/dev/null
	rm -rf "$rootfs"
	trap - EXIT
}

build_python_base() {
	log "building $CHURN_PYTHON_BASE_IMAGE from $CHURN_DEBIAN_BASE_IMAGE"
	# --network host: apt inside the build reaches the same Debian mirror as the host.
	docker build --network host --quiet -t "$CHURN_PYTHON_BASE_IMAGE" \
		--build-arg DEBIAN_BASE_IMAGE="$CHURN_DEBIAN_BASE_IMAGE" -f - "$HACK_DIR" >/dev/null <<-'EOF'
		ARG DEBIAN_BASE_IMAGE
		FROM ${DEBIAN_BASE_IMAGE}
		RUN apt-get update -q \
		 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		      python3 python3-pip python3-venv ca-certificates netbase tzdata \
		 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
		 && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED \
		 && ln -s /usr/bin/python3 /usr/local/bin/python \
		 && ln -s /usr/bin/pip3 /usr/local/bin/pip
		ENV LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
		CMD ["python3"]
	EOF
}

mkdir -p "$CHURN_CACHE"
bash "$HACK_DIR/docker.sh"
if [[ "$FORCE" == 1 ]] || ! image_exists "$CHURN_DEBIAN_BASE_IMAGE"; then
	build_debian_base
fi
if [[ "$FORCE" == 1 ]] || ! image_exists "$CHURN_PYTHON_BASE_IMAGE"; then
	build_python_base
fi
log "ready: $CHURN_DEBIAN_BASE_IMAGE, $CHURN_PYTHON_BASE_IMAGE ($(docker run --rm "$CHURN_PYTHON_BASE_IMAGE" python --version))"
