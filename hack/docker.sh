#!/usr/bin/env bash
# Ensures a Docker engine is running: installs Debian's docker.io if dockerd is missing and starts
# dockerd in the background (data under $CHURN_CACHE/docker) if `docker info` fails. Idempotent.
# Needs root. Only Debian's apt mirror is contacted; the daemon is never asked to pull anything.
set -euo pipefail
CHURN_CACHE="${CHURN_CACHE:-$HOME/.cache/churn-serving}"
DOCKER_DATA_ROOT="${DOCKER_DATA_ROOT:-$CHURN_CACHE/docker}"
DOCKER_LOG="${DOCKER_LOG:-$CHURN_CACHE/dockerd.log}"
DOCKER_READY_TIMEOUT_SECONDS="${DOCKER_READY_TIMEOUT_SECONDS:-60}"

log() { printf 'docker.sh: %s\n' "$*" >&2; }

docker_ready() { docker info >/dev/null 2>&1; }

install_engine() {
	log "dockerd not found: installing docker.io from Debian"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# iptables: dockerd's bridge networking; containerd/runc: the runtime dockerd drives.
	apt-get install -y -q --no-install-recommends docker.io containerd runc iptables ca-certificates
}

start_daemon() {
	mkdir -p "$DOCKER_DATA_ROOT" "$(dirname "$DOCKER_LOG")"
	# A pid file left by a daemon that died makes the next dockerd refuse to start.
	if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
		rm -f /var/run/docker.pid
	fi
	if pgrep -x dockerd >/dev/null; then
		log "dockerd is already starting; waiting for it"
		return
	fi
	log "starting dockerd (data root $DOCKER_DATA_ROOT, log $DOCKER_LOG)"
	# setsid: the daemon outlives the shell that started it (CI step, make recipe).
	setsid dockerd --data-root "$DOCKER_DATA_ROOT" >>"$DOCKER_LOG" 2>&1 </dev/null &
}

wait_ready() {
	local deadline=$((SECONDS + DOCKER_READY_TIMEOUT_SECONDS))
	until docker_ready; do
		if ((SECONDS >= deadline)); then
			log "dockerd not ready after ${DOCKER_READY_TIMEOUT_SECONDS}s; last log lines:"
			tail -n 30 "$DOCKER_LOG" >&2 || true
			exit 1
		fi
		sleep 1
	done
}

# Where root runs with a reduced capability bounding set (CI sandboxes here lack
# CAP_SYS_RESOURCE), runc cannot start privileged containers such as kind nodes. Make Docker's
# default runtime a runc wrapper that drops what cannot be granted (see hack/k8s/runc-bounded).
# Prints "changed" when the daemon config was rewritten.
configure_bounded_runtime() {
	local last_cap full_hex wrapper="$CHURN_CACHE/docker-runtime/runc-bounded" config=/etc/docker/daemon.json current
	last_cap="$(cat /proc/sys/kernel/cap_last_cap)"
	full_hex="$(printf '%016x' $(((1 << (last_cap + 1)) - 1)))"
	[[ "$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)" == "$full_hex" ]] && return
	if ! command -v jq >/dev/null || ! command -v capsh >/dev/null; then
		apt-get update -q >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends jq libcap2-bin >&2
	fi
	install -D -m 0755 "$(dirname "$0")/k8s/runc-bounded" "$wrapper"
	current="$(cat "$config" 2>/dev/null || echo '{}')"
	jq -e --arg path "$wrapper" '.runtimes["runc-bounded"].path == $path and .["default-runtime"] == "runc-bounded"' \
		<<<"$current" >/dev/null && return
	log "capability bounding set is reduced: default runtime becomes $wrapper"
	mkdir -p "$(dirname "$config")"
	jq --arg path "$wrapper" '.runtimes["runc-bounded"] = {path: $path} | .["default-runtime"] = "runc-bounded"' \
		<<<"$current" >"$config"
	echo changed
}

command -v dockerd >/dev/null || install_engine
runtime_config="$(configure_bounded_runtime)"
if docker_ready; then
	# runtimes and default-runtime are reloadable: running containers are not touched.
	[[ "$runtime_config" == changed ]] && kill -HUP "$(cat /var/run/docker.pid)" && sleep 1
	exit 0
fi
start_daemon
wait_ready
log "ready: $(docker version --format 'server {{.Server.Version}}, client {{.Client.Version}}')"
