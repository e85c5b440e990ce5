"""deploy/kubernetes/ checked against Kubernetes' own schemas (no cluster here) and against
what docker-compose.yml's services do, so that both ways of deploying run the same thing."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.compose import ROOT, compose, env_example, interpolate, service_command

MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.31.0"
# The Dockerfile's `useradd --uid 1000 atrium`.
IMAGE_UID = 1000
_REFERENCE = re.compile(r"\$\((\w+)\)")


def documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def resources() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(MANIFESTS.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in documents(path)
    ]


def resource(kind: str, name: str) -> dict[str, Any]:
    matches = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def pod_spec(kind: str, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = resource(kind, name)["spec"]["template"]["spec"]
    return spec


def container(kind: str, name: str) -> dict[str, Any]:
    (only,) = pod_spec(kind, name)["containers"]
    return dict(only)


def config_map() -> dict[str, str]:
    data: dict[str, str] = resource("ConfigMap", "atrium")["data"]
    return data


def expanded(command: list[str], entry: dict[str, Any]) -> list[str]:
    """A container's command as the kubelet runs it: $(NAME) from the container's `env`."""
    values = {}
    for variable in entry.get("env", []):
        if "value" in variable:
            values[variable["name"]] = variable["value"]
        else:
            reference = variable["valueFrom"]["configMapKeyRef"]
            assert reference["name"] == "atrium"
            values[variable["name"]] = config_map()[reference["key"]]
    return [_REFERENCE.sub(lambda m: values.get(m.group(1), m.group(0)), part) for part in command]


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    checked = []
    for document in resources():
        # strict: a field the schema does not know (a typo) is an error too.
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        checked.append((document["kind"], document["metadata"]["name"]))
    assert sorted(checked) == sorted([
        ("Namespace", "atrium"), ("ConfigMap", "atrium"), ("Secret", "atrium"),
        ("Job", "atrium-migrate"), ("Deployment", "atrium-web"), ("Service", "atrium-web"),
        ("Deployment", "atrium-worker"), ("Deployment", "atrium-beat"), ("Ingress", "atrium"),
    ])  # fmt: skip


def test_the_validation_refuses_a_misspelt_or_mistyped_field() -> None:
    web = resource("Deployment", "atrium-web")
    misspelt = copy.deepcopy(web)
    misspelt["spec"]["replica"] = misspelt["spec"].pop("replicas")
    mistyped = copy.deepcopy(web)
    mistyped["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8000"

    for broken in (misspelt, mistyped):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_everything_but_the_secret_template() -> None:
    (kustomization,) = documents(MANIFESTS / "kustomization.yaml")
    files = {path.name for path in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}

    assert set(kustomization["resources"]) == files - {"secret.example.yaml"}
    assert [image["name"] for image in kustomization["images"]] == ["atrium"]


@pytest.mark.parametrize(
    ("service", "kind", "name"),
    [
        ("web", "Deployment", "atrium-web"),
        ("worker", "Deployment", "atrium-worker"),
        ("beat", "Deployment", "atrium-beat"),
        ("migrate", "Job", "atrium-migrate"),
    ],
)
def test_each_workload_runs_the_compose_services_command(
    service: str, kind: str, name: str
) -> None:
    entry = container(kind, name)

    assert expanded(entry["command"], entry) == service_command(service, env_example())
    assert entry["image"] == "atrium"
    # Configuration as Compose's env_file gives it: the ConfigMap and the Secret.
    assert entry["envFrom"] == [
        {"configMapRef": {"name": "atrium"}},
        {"secretRef": {"name": "atrium"}},
    ]


def test_the_config_map_and_secret_hold_what_compose_gives_the_services() -> None:
    given = set(env_example()) | set(compose()["services"]["web"]["environment"])
    secret = resource("Secret", "atrium")["stringData"]
    held = set(config_map()) | set(secret)

    # ATRIUM_HOST is Caddy's; on Kubernetes the Ingress names the host.
    assert given - {"ATRIUM_HOST"} <= held, given - held
    assert not set(config_map()) & set(secret)
    # A template: nothing in it is a usable secret, and the portal refuses its placeholders.
    assert secret["SECRET_KEY"].startswith("change-me")
    assert secret["POSTGRES_PASSWORD"].startswith("change-me")
    assert secret["AUTH0_CLIENT_SECRET"] == secret["AUTH0_MGMT_CLIENT_SECRET"] == ""


def test_web_probes_liveness_on_healthz_and_readiness_on_readyz() -> None:
    web = container("Deployment", "atrium-web")
    (port,) = web["ports"]

    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
    assert f"--bind=0.0.0.0:{port['containerPort']}" in web["command"]
    service = resource("Service", "atrium-web")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= (
        resource("Deployment", "atrium-web")["spec"]["template"]["metadata"]["labels"].items()
    )
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    (rule,) = resource("Ingress", "atrium")["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "atrium-web", "port": {"name": service["spec"]["ports"][0]["name"]}}
    assert config_map()["PORTAL_BASE_URL"] == f"https://{rule['host']}"


@pytest.mark.parametrize(
    ("service", "name"), [("worker", "atrium-worker"), ("beat", "atrium-beat")]
)
def test_worker_and_beat_are_probed_as_compose_checks_them(service: str, name: str) -> None:
    check = compose()["services"][service]["healthcheck"]["test"]
    assert check[0] == "CMD-SHELL"

    probe = container("Deployment", name)["livenessProbe"]["exec"]["command"]
    # Compose's $$HOSTNAME is the shell's $HOSTNAME; a pod's host name is its own name.
    assert probe == ["sh", "-c", interpolate(check[1], {})]


def test_one_beat_replaced_by_stopping_it_first() -> None:
    beat = resource("Deployment", "atrium-beat")

    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    # Should a second one run anyway, the settings' scheduler sends each run once.
    assert "-S" not in beat["spec"]["template"]["spec"]["containers"][0]["command"]
    assert not any(
        part.startswith("--scheduler") for part in container("Deployment", "atrium-beat")["command"]
    )


def gunicorn_graceful_timeout() -> int:
    (flag,) = [
        part for part in service_command("web", {}) if part.startswith("--graceful-timeout=")
    ]
    return int(flag.partition("=")[2])


def test_pods_get_longer_to_stop_than_their_processes_need() -> None:
    assert pod_spec("Deployment", "atrium-web")["terminationGracePeriodSeconds"] > (
        gunicorn_graceful_timeout()
    )
    assert pod_spec("Deployment", "atrium-worker")["terminationGracePeriodSeconds"] >= 60


WORKLOADS = [
    ("Deployment", "atrium-web"),
    ("Deployment", "atrium-worker"),
    ("Deployment", "atrium-beat"),
    ("Job", "atrium-migrate"),
]


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_every_container_runs_as_the_images_user_on_a_read_only_root(kind: str, name: str) -> None:
    spec = pod_spec(kind, name)
    pod = spec["securityContext"]

    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == pod["runAsGroup"] == IMAGE_UID
    assert spec["automountServiceAccountToken"] is False
    volumes = {volume["name"] for volume in spec["volumes"] if "emptyDir" in volume}
    for entry in spec.get("initContainers", []) + spec["containers"]:
        context = entry["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, entry["name"]
        assert context["allowPrivilegeEscalation"] is False, entry["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, entry["name"]
        # What the processes write goes to /tmp, a volume of the pod's own.
        mounts = {mount["mountPath"]: mount["name"] for mount in entry["volumeMounts"]}
        assert mounts.get("/tmp") in volumes, entry["name"]
        # Memory requested, and limited so one leak cannot take the node.
        assert {"cpu", "memory"} <= set(entry["resources"]["requests"]), entry["name"]
        assert "memory" in entry["resources"]["limits"], entry["name"]


def test_beat_keeps_its_state_on_the_writable_volume() -> None:
    beat = container("Deployment", "atrium-beat")
    env = {variable["name"]: variable.get("value") for variable in beat["env"]}

    assert env["CELERY_BEAT_SCHEDULE_FILENAME"].startswith("/tmp/")
    web = {
        variable["name"]: variable.get("value")
        for variable in container("Deployment", "atrium-web")["env"]
    }
    # gunicorn's control socket goes to XDG_RUNTIME_DIR rather than the read-only home.
    assert web["XDG_RUNTIME_DIR"] == "/tmp"


@pytest.mark.parametrize(("kind", "name"), WORKLOADS[:3])
def test_long_running_pods_wait_for_the_migrate_job(kind: str, name: str) -> None:
    (wait,) = pod_spec(kind, name)["initContainers"]

    assert wait["image"] == "atrium"
    assert "python manage.py migrate --check" in wait["command"][-1]
