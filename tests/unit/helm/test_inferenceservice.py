"""The InferenceService: one pod per arm (KServe's sklearn runtime beside the transformer), its
wiring, secrets and security contexts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helm_chart import (
    BASE_VALUES,
    CI_VALUES,
    MODEL_MOUNT,
    SCENARIOS,
    STABLE,
    STABLE_URI,
    Manifest,
    Render,
    RenderError,
    by_kind,
    container_port,
    env_of,
    one,
    render_scenario,
    runtime_container,
    scenario_id,
    transformer_container,
)

TRANSFORMER_PORT = 8080


def containers_of(isvc: Manifest) -> list[Manifest]:
    return [runtime_container(isvc), *isvc["spec"]["predictor"]["containers"]]


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


def probe_port(container: Manifest, probe: str) -> int:
    return container_port(container, container[probe]["httpGet"]["port"])


@pytest.mark.parametrize("scenario", SCENARIOS, ids=scenario_id)
def test_every_arm_is_one_pod_with_the_transformer_beside_the_sklearn_runtime(
    render: Render, scenario: Path | None
) -> None:
    isvcs = by_kind(render_scenario(render, scenario), "InferenceService")

    assert isvcs
    for isvc in isvcs:
        runtime = runtime_container(isvc)
        transformer = transformer_container(isvc)
        env = env_of(transformer)
        # No second component: a separate transformer would be a second pod with its own rollout.
        assert set(isvc["spec"]) == {"predictor"}
        assert runtime["modelFormat"] == {"name": "sklearn"}
        assert runtime["runtime"] == "kserve-sklearnserver"
        assert runtime["protocolVersion"] == "v2"
        # One download for both containers: the bundle root (model/ plus the feature spec).
        assert (
            runtime["storageUri"] == isvc["metadata"]["annotations"]["churn-predictor/bundle-uri"]
        )
        assert env["CHURN_TRANSFORMER_BUNDLE_URI"] == MODEL_MOUNT
        # The storage initializer holds the S3 credentials; KServe refuses STORAGE_URI here.
        assert not [name for name in env if name.startswith("AWS_") or name == "STORAGE_URI"]
        # The runtime's probes check the runtime itself, not the transformer answering on 8080.
        for probe in ("livenessProbe", "readinessProbe"):
            assert probe_port(runtime, probe) != TRANSFORMER_PORT
            assert probe_port(runtime, probe) == int(flag_value(runtime["args"], "--http_port"))
            assert probe_port(transformer, probe) == TRANSFORMER_PORT
        assert runtime["readinessProbe"]["httpGet"]["path"] == "/v2/models/churn/ready"
        assert runtime["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        assert transformer["readinessProbe"]["httpGet"]["path"] == "/v2/models/churn/ready"
        # The transformer calls the runtime's REST port beside it (the default protocol).
        assert flag_value(transformer["args"], "--predictor_protocol") == "v2"
        assert flag_value(transformer["args"], "--predictor_host") == (
            f"127.0.0.1:{flag_value(runtime['args'], '--http_port')}"
        )


def test_runtime_loads_the_bundles_model_dir_with_probabilities(render: Render) -> None:
    isvc = one(render(BASE_VALUES), "InferenceService", STABLE)
    runtime = runtime_container(isvc)
    # KServe's runtime passes --model_dir=/mnt/models and --http_port=8080 first; ours must win.
    args = ["--model_dir=/mnt/models", "--http_port=8080", *runtime["args"]]

    assert runtime["storageUri"] == STABLE_URI
    assert flag_value(args, "--model_dir") == f"{MODEL_MOUNT}/model"
    assert flag_value(args, "--http_port") == "8085"
    assert flag_value(args, "--grpc_port") == "8086"
    assert env_of(runtime)["PREDICT_PROBA"] == "true"
    assert [(p["name"], p["containerPort"]) for p in runtime["ports"]] == [("runtime", 8085)]


def test_storage_uri_ignores_a_trailing_slash_on_the_bundle(render: Render) -> None:
    isvc = one(render(BASE_VALUES, stable__bundleUri=f"{STABLE_URI}/"), "InferenceService", STABLE)

    assert runtime_container(isvc)["storageUri"] == STABLE_URI


@pytest.mark.parametrize("model_name", ["churn", "churn-v2"])
def test_transformer_and_runtime_serve_the_same_model_name(render: Render, model_name: str) -> None:
    isvc = one(render(BASE_VALUES, model__name=model_name), "InferenceService", STABLE)
    # KServe's runtime passes --model_name=<isvc name> first; the chart's later flag must win.
    runtime_args = ["--model_name={{.Name}}", *runtime_container(isvc)["args"]]
    transformer = transformer_container(isvc)

    assert flag_value(runtime_args, "--model_name") == model_name
    assert flag_value(transformer["args"], "--model_name") == model_name
    assert runtime_container(isvc)["readinessProbe"]["httpGet"]["path"] == (
        f"/v2/models/{model_name}/ready"
    )


def test_another_runtime_port_moves_its_flag_port_probes_and_the_transformers_target(
    render: Render,
) -> None:
    isvc = one(
        render(BASE_VALUES, predictor__port=9000, predictor__grpcPort=9001),
        "InferenceService",
        STABLE,
    )
    runtime = runtime_container(isvc)
    transformer = transformer_container(isvc)

    assert flag_value(runtime["args"], "--http_port") == "9000"
    assert flag_value(runtime["args"], "--grpc_port") == "9001"
    assert probe_port(runtime, "readinessProbe") == 9000
    assert flag_value(transformer["args"], "--predictor_host") == "127.0.0.1:9000"
    assert flag_value(transformer["args"], "--http_port") == str(TRANSFORMER_PORT)


@pytest.mark.parametrize("field", ["port", "grpcPort"])
def test_a_runtime_port_of_8080_is_refused_naming_the_field(render: Render, field: str) -> None:
    with pytest.raises(RenderError) as error:
        render(BASE_VALUES, **{f"predictor__{field}": TRANSFORMER_PORT})

    assert f"predictor.{field}: 8080 is the transformer's port" in str(error.value)


def test_equal_runtime_ports_are_refused(render: Render) -> None:
    with pytest.raises(RenderError, match=r"predictor\.port and predictor\.grpcPort are both 9000"):
        render(BASE_VALUES, predictor__port=9000, predictor__grpcPort=9000)


@pytest.mark.parametrize(("protocol", "port"), [("v2", "9000"), ("grpc-v2", "9001")])
def test_the_predictor_protocol_picks_the_runtime_port_the_transformer_calls(
    render: Render, protocol: str, port: str
) -> None:
    values = {"predictor__port": 9000, "predictor__grpcPort": 9001}
    isvc = one(
        render(BASE_VALUES, transformer__predictorProtocol=protocol, **values),
        "InferenceService",
        STABLE,
    )
    args = transformer_container(isvc)["args"]

    assert flag_value(args, "--predictor_protocol") == protocol
    assert flag_value(args, "--predictor_host") == f"127.0.0.1:{port}"


def test_another_predictor_protocol_is_refused_by_the_schema(render: Render) -> None:
    with pytest.raises(RenderError, match="predictorProtocol"):
        render(BASE_VALUES, transformer__predictorProtocol="grpc")


def test_transformer_gets_the_configured_limits(render: Render) -> None:
    isvc = one(
        render(
            BASE_VALUES, transformer__predictorTimeoutSeconds=2.5, transformer__rateLimitBurst=7
        ),
        "InferenceService",
        STABLE,
    )
    container = transformer_container(isvc)
    env = env_of(container)

    assert env["CHURN_TRANSFORMER_PREDICTOR_TIMEOUT_SECONDS"] == "2.5"
    assert env["CHURN_TRANSFORMER_RATE_LIMIT_BURST"] == "7"
    assert container["image"] == "churn/transformer:0.1.0"
    # KServe's Service targets the transformer-container's first port.
    assert container["ports"] == [{"name": "http1", "containerPort": 8080, "protocol": "TCP"}]


def tokens_volume(isvc: Manifest) -> Manifest:
    volumes: dict[str, Manifest] = {v["name"]: v for v in isvc["spec"]["predictor"]["volumes"]}
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
    # The runtime has no business with tokens.
    assert "tokens" not in [m["name"] for m in runtime_container(isvc)["volumeMounts"]]


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
    # KServe hands the Secret listed in the pod's ServiceAccount to its storage initializer only.
    assert account["secrets"] == [{"name": f"{STABLE}-s3"}]
    assert isvc["spec"]["predictor"]["serviceAccountName"] == STABLE


def test_existing_s3_secret_and_service_account(render: Render) -> None:
    manifests = render(CI_VALUES[0].parent / "existing-secrets-values.yaml")
    isvc = one(manifests, "InferenceService", STABLE)

    assert by_kind(manifests, "Secret") == []
    assert by_kind(manifests, "ServiceAccount") == []
    assert isvc["spec"]["predictor"]["serviceAccountName"] == "churn-serving"


def test_missing_required_values_fail_with_the_field_name(render: Render) -> None:
    with pytest.raises(RenderError, match=r"stable\.bundleUri is required"):
        render(BASE_VALUES, stable__bundleUri="")
    with pytest.raises(RenderError, match=r"s3\.accessKeyId is required"):
        render(BASE_VALUES, s3__accessKeyId="")


def test_pod_values_apply_to_the_one_pod_of_each_arm(render: Render) -> None:
    manifests = render(
        BASE_VALUES,
        predictor__podLabels__team="ml",
        predictor__podAnnotations__owner="churn",
        predictor__nodeSelector__pool="serving",
        **{"imagePullSecrets[0]__name": "registry"},
    )
    predictor = one(manifests, "InferenceService", STABLE)["spec"]["predictor"]

    assert predictor["labels"] == {"team": "ml"}
    assert predictor["annotations"] == {"owner": "churn"}
    assert predictor["nodeSelector"] == {"pool": "serving"}
    assert predictor["imagePullSecrets"] == [{"name": "registry"}]


def test_both_containers_leave_why_they_exited_in_the_pod_status(render: Render) -> None:
    """A transformer refused by the sha256 guard exits at once: the reason must outlive its log."""
    for isvc in by_kind(render(BASE_VALUES), "InferenceService"):
        for container in containers_of(isvc):
            assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_container_runs_restricted(render: Render, values: Path) -> None:
    for isvc in by_kind(render(values), "InferenceService"):
        pod = isvc["spec"]["predictor"]["securityContext"]
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
    # KServe names each arm's predictor Deployment and Service `<isvc>-predictor`.
    derived = [
        f"{isvc['metadata']['name']}-predictor" for isvc in by_kind(manifests, "InferenceService")
    ]
    rendered = [m["metadata"]["name"] for m in manifests]

    assert f"{release[:35]}-candidate-predictor-hpa" in rendered
    for name in derived + rendered:
        assert len(name) <= 63, name
