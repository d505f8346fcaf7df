"""The InferenceService: pinned sklearn runtime, transformer wiring, secrets, security contexts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helm_chart import (
    BASE_VALUES,
    CI_VALUES,
    STABLE,
    STABLE_URI,
    Manifest,
    Render,
    RenderError,
    by_kind,
    env_of,
    one,
)


def containers_of(isvc: Manifest) -> list[Manifest]:
    return [isvc["spec"]["predictor"]["model"], *isvc["spec"]["transformer"]["containers"]]


def transformer_container(isvc: Manifest) -> Manifest:
    containers: list[Manifest] = isvc["spec"]["transformer"]["containers"]
    assert len(containers) == 1
    return containers[0]


def flag_value(args: list[str], flag: str) -> str:
    """The value of the last `--flag value` or `--flag=value`: argparse keeps the last one."""
    value = None
    for index, arg in enumerate(args):
        if arg == flag:
            value = args[index + 1]
        elif arg.startswith(f"{flag}="):
            value = arg.split("=", 1)[1]
    assert value is not None, f"{flag} not in {args}"
    return value


def test_predictor_uses_the_pinned_sklearn_runtime_with_v2_and_probabilities(
    render: Render,
) -> None:
    isvc = one(render(BASE_VALUES), "InferenceService", STABLE)
    model = isvc["spec"]["predictor"]["model"]

    assert model["modelFormat"] == {"name": "sklearn"}
    assert model["runtime"] == "kserve-sklearnserver"
    assert model["protocolVersion"] == "v2"
    assert model["storageUri"] == f"{STABLE_URI}/model"
    assert env_of(model)["PREDICT_PROBA"] == "true"


def test_storage_uri_ignores_a_trailing_slash_on_the_bundle(render: Render) -> None:
    isvc = one(render(BASE_VALUES, stable__bundleUri=f"{STABLE_URI}/"), "InferenceService", STABLE)

    assert isvc["spec"]["predictor"]["model"]["storageUri"] == f"{STABLE_URI}/model"
    assert env_of(transformer_container(isvc))["CHURN_TRANSFORMER_BUNDLE_URI"] == STABLE_URI


@pytest.mark.parametrize("model_name", ["churn", "churn-v2"])
def test_transformer_and_predictor_serve_the_same_model_name(
    render: Render, model_name: str
) -> None:
    isvc = one(render(BASE_VALUES, model__name=model_name), "InferenceService", STABLE)
    # KServe's runtime passes --model_name=<isvc name> first; the chart's later flag must win.
    predictor_args = ["--model_name={{.Name}}", *isvc["spec"]["predictor"]["model"]["args"]]
    transformer_args = transformer_container(isvc)["args"]

    assert flag_value(predictor_args, "--model_name") == model_name
    assert flag_value(transformer_args, "--model_name") == model_name


def test_transformer_talks_v2_to_the_predictor_and_reads_its_bundle(render: Render) -> None:
    isvc = one(render(BASE_VALUES), "InferenceService", STABLE)
    container = transformer_container(isvc)
    env = env_of(container)

    assert flag_value(container["args"], "--predictor_protocol") == "v2"
    # KServe fills these in itself; setting them would pin a wrong host or port.
    assert not any(a.startswith(("--predictor_host", "--http_port")) for a in container["args"])
    assert env["CHURN_TRANSFORMER_BUNDLE_URI"] == STABLE_URI
    assert env["AWS_ENDPOINT_URL"] == "http://minio.churn-system.svc.cluster.local:9000"
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": f"{STABLE}-s3", "key": "AWS_ACCESS_KEY_ID"}
    }
    assert container["image"] == "churn/transformer:0.1.0"


def tokens_volume(isvc: Manifest) -> Manifest:
    volumes = {v["name"]: v for v in isvc["spec"]["transformer"]["volumes"]}
    return volumes["tokens"]


def test_tokens_secret_is_mounted_read_only_where_the_transformer_looks(render: Render) -> None:
    manifests = render(BASE_VALUES)
    isvc = one(manifests, "InferenceService", STABLE)
    container = transformer_container(isvc)
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tokens")
    secret = one(manifests, "Secret", f"{STABLE}-tokens")

    assert mount["readOnly"] is True
    assert env_of(container)["CHURN_TRANSFORMER_TOKENS_FILE"] == f"{mount['mountPath']}/tokens.json"
    assert tokens_volume(isvc)["secret"]["secretName"] == f"{STABLE}-tokens"
    # Mounted as a directory (no subPath), so the kubelet updates the file when the Secret changes.
    assert "subPath" not in mount
    assert json.loads(secret["stringData"]["tokens.json"]) == {
        "ci-client": "ci-token-0123456789abcdef"
    }
    # The predictor has no business with tokens.
    predictor_volumes = [v["name"] for v in isvc["spec"]["predictor"]["volumes"]]
    assert "tokens" not in predictor_volumes


def test_existing_tokens_secret_is_used_and_no_secret_is_rendered(render: Render) -> None:
    manifests = render(
        BASE_VALUES, auth__existingSecret="team-tokens", auth__secretKey="clients.json"
    )
    isvc = one(manifests, "InferenceService", STABLE)

    assert tokens_volume(isvc)["secret"]["secretName"] == "team-tokens"
    assert tokens_volume(isvc)["secret"]["items"] == [
        {"key": "clients.json", "path": "clients.json"}
    ]
    assert env_of(transformer_container(isvc))["CHURN_TRANSFORMER_TOKENS_FILE"] == (
        "/etc/churn/tokens/clients.json"
    )
    assert not [s for s in by_kind(manifests, "Secret") if s["metadata"]["name"].endswith("tokens")]


def test_a_random_token_is_generated_when_none_is_given(render: Render) -> None:
    values = CI_VALUES[0].parent / "canary-values.yaml"  # sets no tokens
    first = one(render(values), "Secret", f"{STABLE}-tokens")["stringData"]["tokens.json"]
    second = one(render(values), "Secret", f"{STABLE}-tokens")["stringData"]["tokens.json"]

    tokens = json.loads(first)
    assert list(tokens) == ["default"]
    assert len(tokens["default"]) == 40
    assert first != second  # random per fresh install; upgrades reuse the live Secret (lookup)


def test_s3_secret_carries_kserve_annotations_and_is_listed_in_the_service_account(
    render: Render,
) -> None:
    manifests = render(BASE_VALUES, s3__useHttps=True, s3__verifySsl=False, s3__region="eu-west-1")
    secret = one(manifests, "Secret", f"{STABLE}-s3")
    account = one(manifests, "ServiceAccount", STABLE)
    isvc = one(manifests, "InferenceService", STABLE)

    assert secret["metadata"]["annotations"] == {
        "serving.kserve.io/s3-endpoint": "minio.churn-system.svc.cluster.local:9000",
        "serving.kserve.io/s3-usehttps": "1",
        "serving.kserve.io/s3-verifyssl": "0",
        "serving.kserve.io/s3-region": "eu-west-1",
    }
    assert set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert account["secrets"] == [{"name": f"{STABLE}-s3"}]
    assert isvc["spec"]["predictor"]["serviceAccountName"] == STABLE
    assert env_of(transformer_container(isvc))["AWS_ENDPOINT_URL"].startswith("https://")


def test_existing_s3_secret_and_service_account(render: Render) -> None:
    manifests = render(CI_VALUES[0].parent / "existing-secrets-values.yaml")
    isvc = one(manifests, "InferenceService", STABLE)

    assert by_kind(manifests, "Secret") == []
    assert by_kind(manifests, "ServiceAccount") == []
    assert isvc["spec"]["predictor"]["serviceAccountName"] == "churn-serving"
    assert env_of(transformer_container(isvc))["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "churn-s3", "key": "AWS_SECRET_ACCESS_KEY"}
    }


def test_missing_required_values_fail_with_the_field_name(render: Render) -> None:
    with pytest.raises(RenderError, match=r"stable\.bundleUri is required"):
        render(BASE_VALUES, stable__bundleUri="")
    with pytest.raises(RenderError, match=r"s3\.accessKeyId is required"):
        render(BASE_VALUES, s3__accessKeyId="")


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_container_runs_restricted(render: Render, values: Any) -> None:
    for isvc in by_kind(render(values), "InferenceService"):
        for component in ("predictor", "transformer"):
            pod = isvc["spec"][component]["securityContext"]
            assert pod["runAsNonRoot"] is True
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in containers_of(isvc):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["privileged"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            # A read-only root needs a writable /tmp for Python's tempfile users.
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # noqa: S108
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]
            assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
            assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"


def test_inferenceservices_are_always_standard_mode_behind_the_gateway_route(
    render: Render,
) -> None:
    isvc = one(render(BASE_VALUES), "InferenceService", STABLE)

    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    # The gateway route is the only entry point, so KServe must create no route of its own.
    assert isvc["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local"


def test_a_removed_deployment_mode_fails_naming_the_field_and_the_fix(render: Render) -> None:
    with pytest.raises(RenderError) as error:
        render(BASE_VALUES, deploymentMode="Knative")
    # An old values file that names the one remaining mode still installs.
    render(BASE_VALUES, deploymentMode="Standard")

    message = str(error.value)
    assert "deploymentMode: Knative mode was removed" in message
    assert "Delete deploymentMode from your values" in message


def test_long_release_names_keep_every_kserve_derived_name_a_dns_label(render: Render) -> None:
    release = "a-very-long-release-name-for-the-churn-team"
    manifests = render(CI_VALUES[0].parent / "canary-values.yaml", release=release)
    # KServe names each component's Deployment and Service `<isvc>-<component>`.
    derived = [
        f"{isvc['metadata']['name']}-{component}"
        for isvc in by_kind(manifests, "InferenceService")
        for component in ("predictor", "transformer")
    ]
    rendered = [m["metadata"]["name"] for m in manifests]

    assert f"{release[:35]}-candidate-transformer" in derived
    for name in derived + rendered:
        assert len(name) <= 63, name
