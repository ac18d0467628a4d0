"""deploy/kuberay: the Kubernetes manifests are valid for KubeRay v1.7.0 (the OpenAPI v3 schemas
of its CRDs, as the API server checks them), the core objects carry what nasorch relies on, and
every file agrees with the others, with cluster.yaml, pyproject.toml and nasorch's own config
and command-line checks. No cluster is needed."""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy" / "kuberay"
# KubeRay v1.7.0's CRDs, beside the repository like the other shared data (always there in CI).
CRDS = ROOT.parent / "shared" / "data" / "kuberay"
SECRET_KEY = "auth_token"  # the key KubeRay reads from authOptions.secretName's Secret
MANIFESTS = ("storage.yaml", "mlflow.yaml", "configmap.yaml", "raycluster.yaml", "rayjob.yaml")


# ---- loading ------------------------------------------------------------------------------


def documents(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d is not None]


def the(kind: str, docs: list[dict], name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"].get("name"))]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def all_docs() -> dict[str, list[dict]]:
    return {name: documents(name) for name in MANIFESTS}


@pytest.fixture(scope="module")
def raycluster(all_docs: dict[str, list[dict]]) -> dict:
    return the("RayCluster", all_docs["raycluster.yaml"])


@pytest.fixture(scope="module")
def rayjob(all_docs: dict[str, list[dict]]) -> dict:
    return the("RayJob", all_docs["rayjob.yaml"])


@pytest.fixture(scope="module")
def cluster_specs(raycluster: dict, rayjob: dict) -> dict[str, dict]:
    """Both Ray cluster specs: the standing cluster's and the RayJob's inline one."""
    return {"raycluster": raycluster["spec"], "rayjob": rayjob["spec"]["rayClusterSpec"]}


@pytest.fixture(scope="module")
def mlflow(all_docs: dict[str, list[dict]]) -> dict[str, dict]:
    docs = all_docs["mlflow.yaml"]
    return {"deployment": the("Deployment", docs), "service": the("Service", docs)}


@pytest.fixture(scope="module")
def search_config(all_docs: dict[str, list[dict]]) -> dict:
    config_map = the("ConfigMap", all_docs["configmap.yaml"], "nasorch-search-config")
    return yaml.safe_load(config_map["data"]["search.yaml"])


@pytest.fixture(scope="module")
def ray_up_cluster() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def pods(spec: dict) -> dict[str, dict]:
    """Pod specs of a Ray cluster spec by group: the head's and each worker group's."""
    out = {"head": spec["headGroupSpec"]["template"]["spec"]}
    for group in spec.get("workerGroupSpecs", []):
        out[group["groupName"]] = group["template"]["spec"]
    return out


def ray_containers(spec: dict) -> dict[str, dict]:
    """The Ray container of every group (KubeRay's rule: the first container runs Ray)."""
    return {group: pod["containers"][0] for group, pod in pods(spec).items()}


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def mount_of(pod: dict, container: dict, predicate: Callable[[dict], bool]) -> str | None:
    """Where `container` mounts the pod's volume that `predicate` picks, if it does."""
    names = {v["name"] for v in pod.get("volumes", []) if predicate(v)}
    paths = [m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in names]
    return paths[0] if paths else None


def cpus(quantity: str | int | float) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def flags(args: list[str]) -> dict[str, str | None]:
    """`--name=value` / `--name value` / `--switch` arguments as a dict."""
    out: dict[str, str | None] = {}
    i = 0
    while i < len(args):
        name, eq, value = args[i].partition("=")
        if not eq and i + 1 < len(args) and not args[i + 1].startswith("--"):
            value, i = args[i + 1], i + 1
        out[name] = value if (eq or value) else None
        i += 1
    return out


# ---- the CRDs' schemas as JSON Schema -------------------------------------------------------


def json_schema(node: Any) -> Any:
    """A CRD's OpenAPI v3 schema as JSON Schema, as strict as the API server: objects with
    `properties` reject unknown fields (what structural-schema pruning / strict field validation
    does), except under x-kubernetes-preserve-unknown-fields; int-or-string is integer or
    string; other x-kubernetes-* keys (list types, CEL rules) are not JSON Schema and are left
    out. `required`, `enum`, `type`, patterns and bounds are kept."""
    if isinstance(node, list):
        return [json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("description", "nullable"):
            continue
        if key == "properties":  # field names, not keywords
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "anyOf", "allOf", "oneOf"):
            out[key] = json_schema(value)
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    strict = not node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and strict and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


def crd_validator(file: str) -> jsonschema.Draft7Validator:
    # 40,000 lines of YAML: libyaml's loader when PyYAML has it (a second instead of ten).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    crd = yaml.load((CRDS / file).read_text(), Loader=loader)
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["group"] == "ray.io"
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = json_schema(v1["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def validators() -> dict[str, jsonschema.Draft7Validator]:
    assert CRDS.is_dir(), f"KubeRay's CRDs are not in {CRDS} (see its README)"
    return {
        "RayCluster": crd_validator("ray.io_rayclusters.yaml"),
        "RayJob": crd_validator("ray.io_rayjobs.yaml"),
    }


def schema_errors(validators: dict, manifest: dict) -> list[str]:
    errors = validators[manifest["kind"]].iter_errors(manifest)
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


@pytest.mark.parametrize("file", ["raycluster.yaml", "rayjob.yaml"])
def test_valid_against_kuberay_1_7_crds(validators, all_docs, file):
    (manifest,) = all_docs[file]
    assert manifest["apiVersion"] == "ray.io/v1"
    assert schema_errors(validators, manifest) == []


def test_the_schema_check_rejects_unknown_fields(validators, raycluster, rayjob):
    # The converted schema must be able to fail, or the test above proves nothing.
    bogus = copy.deepcopy(raycluster)
    bogus["spec"]["headGroupSpec"]["bogus"] = 1
    assert any("'bogus' was unexpected" in e for e in schema_errors(validators, bogus))
    deep = copy.deepcopy(raycluster)  # a typo deep inside the embedded pod template
    deep["spec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = 1
    assert any("imagePullPolicyy" in e for e in schema_errors(validators, deep))
    inline = copy.deepcopy(rayjob)
    inline["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["minReplica"] = 0
    assert any("'minReplica' was unexpected" in e for e in schema_errors(validators, inline))
    top = copy.deepcopy(rayjob)
    top["spec"]["shutdownAfterJobFinish"] = True
    assert any("shutdownAfterJobFinish'" in e for e in schema_errors(validators, top))


def test_the_schema_check_rejects_missing_and_wrong_values(validators, raycluster, rayjob):
    no_template = copy.deepcopy(raycluster)
    del no_template["spec"]["headGroupSpec"]["template"]
    assert "spec.headGroupSpec: 'template' is a required property" in schema_errors(
        validators, no_template
    )
    no_name = copy.deepcopy(rayjob)
    del no_name["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["groupName"]
    assert any(
        "'groupName' is a required property" in e for e in schema_errors(validators, no_name)
    )
    wrong = copy.deepcopy(raycluster)
    wrong["spec"]["authOptions"]["mode"] = "tokens"  # enum
    wrong["spec"]["workerGroupSpecs"][0]["maxReplicas"] = "4"  # type
    errors = schema_errors(validators, wrong)
    assert any(e.startswith("spec.authOptions.mode: 'tokens' is not one of") for e in errors)
    assert any(e.startswith("spec.workerGroupSpecs.0.maxReplicas: '4' is not") for e in errors)


# ---- what KubeRay's operator checks beyond the schema (utils/validation.go) ---------------


def test_passes_the_operators_own_checks(cluster_specs, rayjob):
    for where, spec in cluster_specs.items():
        # Token auth needs Ray 2.52 or later, and rayVersion set.
        major, minor, *_ = (int(x) for x in spec["rayVersion"].split("."))
        assert spec["authOptions"]["mode"] == "token" and (major, minor) >= (2, 52), where
        for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
            # Ray resources in rayStartParams or in `resources`, never both.
            start = group.get("rayStartParams", {})
            in_start = {"num-cpus", "num-gpus", "memory", "resources"} & set(start)
            assert not (in_start and group.get("resources")), where
            assert "labels" not in start, where
        for group in spec["workerGroupSpecs"]:
            assert 0 <= group["minReplicas"] <= group["maxReplicas"], where
    job = rayjob["spec"]
    assert ("rayClusterSpec" in job) != ("clusterSelector" in job)
    if not job.get("shutdownAfterJobFinishes"):
        assert not job.get("ttlSecondsAfterFinished")
    name = rayjob["metadata"].get("name") or rayjob["metadata"]["generateName"]
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?-?", name)  # a DNS-1035 label


def test_rayjob_runs_the_standing_clusters_spec(raycluster, rayjob):
    # rayjob.yaml carries raycluster.yaml's spec inline: one cluster shape to maintain.
    assert rayjob["spec"]["rayClusterSpec"] == raycluster["spec"]


# ---- core objects --------------------------------------------------------------------------


def test_core_objects_have_kind_version_and_name(all_docs):
    versions = {"Deployment": "apps/v1", "Service": "v1", "PersistentVolumeClaim": "v1"}
    versions |= {"ConfigMap": "v1", "RayCluster": "ray.io/v1", "RayJob": "ray.io/v1"}
    for file, docs in all_docs.items():
        for doc in docs:
            assert versions.get(doc["kind"]) == doc["apiVersion"], (file, doc["kind"])
            name = doc["metadata"].get("name") or doc["metadata"].get("generateName")
            assert name and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?-?", name), (file, name)


def test_core_objects_pass_the_kubernetes_schemas_inside_the_crd(validators, all_docs):
    # The RayCluster CRD embeds Kubernetes' own schemas of a pod template, a Service and a
    # claim's spec: the same strict check for the MLflow Deployment's pods, the Service and
    # the claims, without a cluster.
    head = validators["RayCluster"].schema["properties"]["spec"]["properties"]["headGroupSpec"]
    template = head["properties"]["template"]
    volume = template["properties"]["spec"]["properties"]["volumes"]["items"]["properties"]
    claim_spec = volume["ephemeral"]["properties"]["volumeClaimTemplate"]["properties"]["spec"]
    schemas = {
        "Deployment": (template, lambda d: d["spec"]["template"]),
        "Service": (head["properties"]["headService"], lambda d: d),
        "PersistentVolumeClaim": (claim_spec, lambda d: d["spec"]),
    }
    checked = 0
    for file, docs in all_docs.items():
        for doc in (d for d in docs if d["kind"] in schemas):
            schema, part = schemas[doc["kind"]]
            errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(part(doc))]
            assert errors == [], (file, doc["kind"])
            checked += 1
    assert checked == 4  # mlflow.yaml: claim, Deployment, Service; storage.yaml: claim
    typo = copy.deepcopy(the("Deployment", all_docs["mlflow.yaml"]))
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    assert not jsonschema.Draft7Validator(template).is_valid(typo["spec"]["template"])


def test_nothing_is_exposed_outside_the_cluster(all_docs, cluster_specs):
    for file, docs in all_docs.items():
        for doc in docs:
            assert doc["kind"] != "Ingress", file
            if doc["kind"] == "Service":
                assert doc["spec"].get("type", "ClusterIP") == "ClusterIP", file
                assert not any("nodePort" in p for p in doc["spec"]["ports"]), file
    pod_specs = [the_pod for spec in cluster_specs.values() for the_pod in pods(spec).values()]
    for deployment in (d for docs in all_docs.values() for d in docs if d["kind"] == "Deployment"):
        pod_specs.append(deployment["spec"]["template"]["spec"])
    for pod in pod_specs:
        assert not pod.get("hostNetwork")
        assert not any("hostPort" in p for c in pod["containers"] for p in c.get("ports", []))
    for where, spec in cluster_specs.items():
        head = spec["headGroupSpec"]
        assert head.get("serviceType", "ClusterIP") == "ClusterIP", where
        assert not head.get("enableIngress"), where
        assert head.get("headService", {}).get("spec", {}).get("type", "ClusterIP") == "ClusterIP"


def test_ray_token_auth_on_every_ray_container(cluster_specs):
    for where, spec in cluster_specs.items():
        secret = spec["authOptions"]["secretName"]
        containers = dict(ray_containers(spec))
        containers["autoscaler"] = spec["autoscalerOptions"]
        for group, container in containers.items():
            env = env_of(container)
            assert env["RAY_AUTH_MODE"].get("value") == "token", (where, group)
            ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": secret, "key": SECRET_KEY}, (where, group)


def test_cpu_head_and_gpu_workers_as_in_cluster_yaml(cluster_specs, ray_up_cluster):
    types = ray_up_cluster["available_node_types"]
    head_type = types[ray_up_cluster["head_node_type"]]
    gpu_worker = types["gpu_worker"]
    for where, spec in cluster_specs.items():
        assert spec["enableInTreeAutoscaling"] is True, where
        idle = spec["autoscalerOptions"]["idleTimeoutSeconds"]
        assert idle == ray_up_cluster["idle_timeout_minutes"] * 60, where
        head_cpus = spec["headGroupSpec"]["rayStartParams"]["num-cpus"]
        assert float(head_cpus) == head_type["resources"]["CPU"] == 0, where
        (group,) = spec["workerGroupSpecs"]
        assert group["minReplicas"] == gpu_worker["min_workers"] == 0, where
        assert group["maxReplicas"] == gpu_worker["max_workers"], where
        assert group["maxReplicas"] == ray_up_cluster["max_workers"], where
        # KubeRay gives Ray the container's limits (rayStartParams do not override them here).
        assert not {"num-cpus", "num-gpus"} & set(group.get("rayStartParams", {})), where
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert cpus(limits["cpu"]) == gpu_worker["resources"]["CPU"], where
        assert int(limits["nvidia.com/gpu"]) == gpu_worker["resources"]["GPU"], where
        requests = group["template"]["spec"]["containers"][0]["resources"]["requests"]
        assert cpus(requests["cpu"]) <= cpus(limits["cpu"]), where


def test_one_image_at_the_ray_version_nasorch_pins(cluster_specs, rayjob):
    images = {c["image"] for spec in cluster_specs.values() for c in ray_containers(spec).values()}
    assert len(images) == 1, images
    (image,) = images
    assert re.fullmatch(r"[\w.\-/]+:[\w.\-]+", image) and not image.endswith(":latest")
    # Ray's version: pyproject's bound, the pin CI tests, rayVersion, and the image's base.
    pyproject = (ROOT / "pyproject.toml").read_text()
    ray_requirement = Requirement(re.search(r'"(ray\[[^"]+)"', pyproject).group(1))
    pinned = re.search(r"^ray==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M).group(1)
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^FROM rayproject/ray:(\d+\.\d+\.\d+)-py\d+-gpu\s*$", dockerfile, re.M)
    assert base, "the Dockerfile is not based on a rayproject/ray GPU image"
    for version in [base.group(1), pinned, *(s["rayVersion"] for s in cluster_specs.values())]:
        assert version == pinned and ray_requirement.specifier.contains(version), version
    # torch: the CUDA build of the version CI tests (docs/getting-started/install.md).
    torch_pin = re.search(r"^torch==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert f'"torch=={torch_pin.group(1)}"' in dockerfile
    assert "-c constraints.txt" in dockerfile and "download.pytorch.org/whl/cpu" not in dockerfile


def test_the_shared_storage_is_read_write_many_on_every_ray_node(
    all_docs, cluster_specs, search_config
):
    claim = the("PersistentVolumeClaim", all_docs["storage.yaml"], "nasorch-shared")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    name = claim["metadata"]["name"]
    for where, spec in cluster_specs.items():
        paths = {
            group: mount_of(
                pods(spec)[group],
                container,
                lambda v: v.get("persistentVolumeClaim", {}).get("claimName") == name,
            )
            for group, container in ray_containers(spec).items()
        }
        assert len(set(paths.values())) == 1 and None not in paths.values(), (where, paths)
        mount = next(iter(paths.values()))
        # nasorch's checkpoints land on it, on every node at the same path.
        assert Path(search_config["storage_path"]).is_relative_to(mount), where
        head_env = env_of(ray_containers(spec)["head"])
        assert head_env["NASORCH_STORAGE_PATH"]["value"] == search_config["storage_path"]


def test_mlflow_server_command_store_and_port(mlflow, all_docs):
    pod = mlflow["deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    command = [*container.get("command", []), *container.get("args", [])]
    assert command[:2] == ["mlflow", "server"], command
    args = flags(command[2:])
    # Every flag is one `mlflow server` of the pinned MLflow accepts (parsed, not run).
    from mlflow.cli import server

    server.make_context("mlflow server", command[2:])
    assert args["--host"] == "0.0.0.0"  # inside the pod; the Service is ClusterIP
    (port,) = container["ports"]
    assert int(args["--port"]) == port["containerPort"]
    # The database lives on the claim, not in the container's own (lost) file system.
    store = args["--backend-store-uri"]
    assert store.startswith("sqlite:////"), store
    claims = {
        c["metadata"]["name"]
        for c in all_docs["mlflow.yaml"]
        if c["kind"] == "PersistentVolumeClaim"
    }
    on_claim = mount_of(
        pod, container, lambda v: v.get("persistentVolumeClaim", {}).get("claimName") in claims
    )
    assert on_claim and Path(store.removeprefix("sqlite:///")).is_relative_to(on_claim)
    # Artifacts in object storage, served through the server to every client.
    assert "--serve-artifacts" in args and "--no-serve-artifacts" not in args
    destination = args.get("--artifacts-destination") or args.get("--default-artifact-root")
    assert urlparse(destination).scheme in ("s3", "gs", "wasbs"), destination


def test_the_tracking_uri_reaches_the_mlflow_service(mlflow, search_config, cluster_specs):
    from mlflow.server.security_utils import is_allowed_host_header

    service, deployment = mlflow["service"], mlflow["deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    uri = urlparse(search_config["tracking"]["uri"])
    assert uri.scheme == "http" and uri.hostname == service["metadata"]["name"]
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == uri.port]
    by_name = {p.get("name"): p["containerPort"] for p in container["ports"]}
    target = by_name.get(port["targetPort"], port["targetPort"])  # a port's name or number
    assert target == int(flags(container["args"])["--port"])
    # MLflow's DNS-rebinding check lets the driver (Service name) and a port-forward in.
    allowed = flags(container["args"])["--allowed-hosts"].split(",")
    for host in (uri.netloc, "127.0.0.1:5000", "localhost:5000"):
        assert is_allowed_host_header(allowed, host), host
    assert not is_allowed_host_header(allowed, f"nasorch-mlflow.evil.example:{uri.port}")
    for where, spec in cluster_specs.items():
        head_env = env_of(ray_containers(spec)["head"])
        assert head_env["MLFLOW_TRACKING_URI"]["value"] == search_config["tracking"]["uri"], where


def test_the_search_config_passes_nasorchs_checks(search_config):
    from orchestrator.execution.components import load_config

    cfg = load_config(search_config)  # schema, then every component built, as `nasorch check`
    assert cfg.resolved_storage_path() == search_config["storage_path"]
    assert cfg.resources.gpu > 0  # trials on the GPU workers


def test_rayjob_runs_nasorch_on_the_mounted_config(rayjob, all_docs):
    from orchestrator.commands.cli import build_parser

    words = shlex.split(rayjob["spec"]["entrypoint"])
    scripts = (ROOT / "pyproject.toml").read_text().partition("[project.scripts]")[2]
    assert re.match(rf"\s*{words[0]} = ", scripts), words[0]  # the command nasorch installs
    args = build_parser(words[1:]).parse_args(words[1:])
    assert args.command == "run" and args.address == "auto"
    # The config file is the ConfigMap's key, mounted where the driver runs: the head.
    config_map = the("ConfigMap", all_docs["configmap.yaml"])
    spec = rayjob["spec"]["rayClusterSpec"]
    head_pod, head = pods(spec)["head"], ray_containers(spec)["head"]
    mount = mount_of(
        head_pod,
        head,
        lambda v: v.get("configMap", {}).get("name") == config_map["metadata"]["name"],
    )
    config = Path(args.config)
    assert mount and config.parent == Path(mount) and config.name in config_map["data"]
    assert rayjob["spec"]["shutdownAfterJobFinishes"] is True
    assert rayjob["spec"]["ttlSecondsAfterFinished"] > 0


def test_readmes_name_the_files_and_commands(mlflow, raycluster):
    local = (DEPLOY / "README.md").read_text()
    for file in [*MANIFESTS, "Dockerfile"]:
        assert file in local, file
    for mentioned in re.findall(r"deploy/kuberay/([\w.]+)", local):
        assert (DEPLOY / mentioned).is_file(), mentioned
    assert "--version 1.7.0" in local  # the operator whose CRDs the tests use
    secret = raycluster["spec"]["authOptions"]["secretName"]
    assert f"kubectl create secret generic {secret} --from-literal={SECRET_KEY}=" in local
    # The user's chapter: the how-to page of the documentation site (the README's moved there).
    page = (ROOT / "docs" / "how-to" / "kubernetes.md").read_text()
    section = re.search(r"^# Run on Kubernetes\n(.*)", page, re.S | re.M)
    assert section, "docs/how-to/kubernetes.md has no '# Run on Kubernetes' page"
    service = mlflow["service"]
    port = service["spec"]["ports"][0]["port"]
    forward = f"kubectl port-forward svc/{service['metadata']['name']} {port}:{port}"
    assert forward in section.group(1) and forward in local
