"""kubectl and helm on the e2e cluster: commands, waits with progress, port-forwards, dumps."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]


LOG = logging.getLogger("e2e")


def say(message: str) -> None:
    """Progress of long steps: live on the terminal with `-o log_cli=true` (make e2e sets it)."""
    LOG.info(message)


class CommandFailed(RuntimeError):
    pass


class Kube:
    """kubectl and helm bound to one kubeconfig (a minified copy holding only the e2e context)."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}

    def run(
        self, *args: str, input_text: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(args),
            input=input_text,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise CommandFailed(
                f"{' '.join(args[:6])} ... exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def kubectl(self, *args: str, **kwargs: Any) -> str:
        return self.run("kubectl", *args, **kwargs).stdout

    def helm(self, *args: str, **kwargs: Any) -> str:
        return self.run("helm", *args, **kwargs).stdout

    def get(self, *args: str) -> dict[str, Any]:
        """`kubectl get ... -o json`, parsed."""
        parsed: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json"))
        return parsed

    def exists(self, *args: str) -> bool:
        return self.run("kubectl", "get", *args, check=False).returncode == 0

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-f", "-", input_text=manifest)

    @contextmanager
    def port_forward(self, namespace: str, target: str, port: int) -> Iterator[PortForward]:
        forward = PortForward(self, namespace, target, port)
        try:
            yield forward
        finally:
            forward.stop()

    def diagnostics(self, namespaces: tuple[str, ...]) -> str:
        """What an engineer looks at first when a step fails: objects, events, unready pods."""
        sections = []
        for namespace in namespaces:
            sections.append(f"===== namespace {namespace} =====")
            for args in (
                ("get", "inferenceservices,deployments,pods,jobs,hpa,httproutes", "-o", "wide"),
                ("get", "events", "--sort-by=.lastTimestamp"),
            ):
                result = self.run("kubectl", "-n", namespace, *args, check=False)
                sections.append(f"$ kubectl -n {namespace} {' '.join(args)}")
                sections.append("\n".join((result.stdout + result.stderr).splitlines()[-40:]))
            for pod in self._unready_pods(namespace):
                for args in (
                    ("describe", "pod", pod),
                    ("logs", pod, "--all-containers", "--tail=60"),
                ):
                    result = self.run("kubectl", "-n", namespace, *args, check=False)
                    sections.append(f"$ kubectl -n {namespace} {' '.join(args)}")
                    sections.append("\n".join((result.stdout + result.stderr).splitlines()[-60:]))
        return "\n".join(sections)

    def _unready_pods(self, namespace: str) -> list[str]:
        result = self.run("kubectl", "-n", namespace, "get", "pods", "-o", "json", check=False)
        if result.returncode != 0:
            return []
        pods = []
        for pod in json.loads(result.stdout)["items"]:
            conditions = pod.get("status", {}).get("conditions", [])
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            if not ready and pod["status"].get("phase") != "Succeeded":
                pods.append(pod["metadata"]["name"])
        return pods


class PortForward:
    """`kubectl port-forward` to a loopback port, restarted when it died (its pod was replaced)."""

    def __init__(self, kube: Kube, namespace: str, target: str, port: int) -> None:
        self._kube = kube
        self._args = ("-n", namespace, target, port)
        self._process: subprocess.Popen[str] | None = None
        self._local_port = 0

    @property
    def url(self) -> str:
        if self._process is None or self._process.poll() is not None:
            self._start()
        return f"http://127.0.0.1:{self._local_port}"

    def _start(self) -> None:
        namespace_flag, namespace, target, port = self._args
        self._process = subprocess.Popen(
            [
                "kubectl",
                "port-forward",
                "--address",
                "127.0.0.1",
                namespace_flag,
                namespace,
                str(target),
                f"0:{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self._kube.env,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not match:
            self.stop()
            raise CommandFailed(f"port-forward to {namespace}/{target}:{port} failed: {line}")
        self._local_port = int(match.group(1))

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        self._process = None


def wait_until(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 3.0,
    progress_every: float = 30.0,
) -> T:
    """Polls `probe` until it returns a truthy value; says what it waits for while it waits."""
    say(f"waiting for {what} (up to {timeout:.0f}s)")
    started = time.monotonic()
    last_report = started
    last_error = ""
    while True:
        try:
            value = probe()
            if value:
                say(f"{what}: done after {time.monotonic() - started:.0f}s")
                return value
        except (CommandFailed, OSError, ValueError, KeyError) as error:
            last_error = f" (last error: {str(error).strip()[:300]})"
        now = time.monotonic()
        if now - started > timeout:
            raise TimeoutError(f"{what}: not reached after {timeout:.0f}s{last_error}")
        if now - last_report >= progress_every:
            say(f"  still waiting for {what}: {now - started:.0f}s{last_error}")
            last_report = now
        time.sleep(interval)
