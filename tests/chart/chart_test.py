#!/usr/bin/env python3
"""Tests of the infra/k8s-portable Helm chart: lint, a render matrix validated against the
vendored schemas, the product doc's exact commands, clear errors for bad values and missing
CRDs, and a golden rendering.

usage: chart_test.py --helm HELM --repo REPO {lint,matrix,doc,negative,golden} [--update]
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean (no __pycache__)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import validate  # noqa: E402

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")

# The APIs a cluster serves once every prerequisite is installed (Helm matches these strings
# against .Capabilities.APIVersions.Has "group/version/Kind").
ALL_APIS = [
    "serving.kserve.io/v1beta1/InferenceService",
    "inference.networking.k8s.io/v1/InferencePool",
    "gateway.networking.k8s.io/v1/HTTPRoute",
    "autoscaling.aibrix.ai/v1alpha1/PodAutoscaler",
    "keda.sh/v1alpha1/ScaledObject",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PodMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
]
# What the product doc lists as prerequisites: KServe, GIE (+ Gateway API), AIBrix.
DOC_APIS = ALL_APIS[:4] + ["orchestration.aibrix.ai/v1alpha1/KVCache"]

# Verbatim from docs/product/portable-kubernetes.txt ("The infra/k8s-portable Helm chart").
DOC_SECRET = ("kubectl -n zumik-portable create secret generic zumik-control-plane "
              "--from-literal=api-key=zk_live_xxx")
DOC_INSTALL = ("helm install us-east ./infra/k8s-portable --namespace zumik-portable "
               "--set model.served=meta-llama/Llama-3.1-8B-Instruct --set runtime.gpusPerReplica=1 "
               "--set aibrix.autoscaler.targetTtftMs=400")
DOC_UPGRADE = ("helm upgrade us-east ./infra/k8s-portable --reuse-values "
               "--set operator.clusterId=byc_xxx")

MODEL = ["--set", "model.served=meta-llama/Llama-3.1-8B-Instruct"]


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Chart:
    def __init__(self, helm, repo):
        self.helm = helm
        self.repo = repo
        self.path = os.path.join(repo, "infra", "k8s-portable")

    def run(self, args, cwd=None):
        return subprocess.run([self.helm] + args, cwd=cwd or self.repo, capture_output=True,
                              text=True, timeout=60)

    def run_ok(self, args):
        result = self.run(args)
        if result.returncode != 0:
            raise Failure(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def template(self, sets, apis=ALL_APIS, release="us-east", namespace="zumik-portable"):
        args = ["template", release, self.path, "--namespace", namespace] + sets
        for api in apis:
            args += ["--api-versions", api]
        return self.run(args)

    def render(self, sets, apis=ALL_APIS, **kw):
        result = self.template(sets, apis, **kw)
        if result.returncode != 0:
            raise Failure(f"helm template {' '.join(sets)} failed:\n{result.stderr}")
        return result.stdout


def objects_by_kind(docs):
    out = {}
    for doc in docs:
        out.setdefault(doc["kind"], []).append(doc)
    return out


def find(docs, kind, name_suffix=""):
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    check(len(hits) == 1, f"expected one {kind} *{name_suffix}, found {[d['metadata']['name'] for d in hits]}")
    return hits[0]


def absent(docs, kind):
    check(not any(d["kind"] == kind for d in docs), f"unexpected {kind} rendered")


def container(obj, name=None):
    _, pod, _ = validate.pod_specs(obj)[0]
    containers = pod["containers"]
    return containers[0] if name is None else next(c for c in containers if c["name"] == name)


def args_of(obj, name=None):
    return container(obj, name).get("args", [])


def pod_security_errors(docs):
    """Every workload: requests set, no privilege escalation, non-root, capabilities dropped."""
    errors = []
    for doc in docs:
        for where, pod, _ in validate.pod_specs(doc):
            tag = f"{doc['kind']} {doc['metadata']['name']}"
            pod_non_root = (pod.get("securityContext") or {}).get("runAsNonRoot")
            for c in pod.get("containers", []):
                sc = c.get("securityContext") or {}
                if not (sc.get("runAsNonRoot", pod_non_root)):
                    errors.append(f"{tag}/{c['name']}: runAsNonRoot is not true (pod or container)")
                if sc.get("allowPrivilegeEscalation") is not False:
                    errors.append(f"{tag}/{c['name']}: allowPrivilegeEscalation is not false")
                if "ALL" not in (sc.get("capabilities") or {}).get("drop", []):
                    errors.append(f"{tag}/{c['name']}: capabilities are not dropped")
                requests = (c.get("resources") or {}).get("requests") or {}
                if not ("cpu" in requests and "memory" in requests):
                    errors.append(f"{tag}/{c['name']}: no cpu+memory resource requests")
                if c["name"] != "kserve-container" and sc.get("readOnlyRootFilesystem") is not True:
                    errors.append(f"{tag}/{c['name']}: root filesystem is writable")
    return errors


def lmcache_config(docs):
    cm = find(docs, "ConfigMap", "-lmcache")
    return validate.load_yaml_documents(cm["data"]["lmcache.yaml"])[0]


# ----- the matrix: (name, --set args, apis, assertions over the rendered objects) -----

def expect_doc_install(docs):
    isvc = find(docs, "InferenceService")
    annotations = isvc["metadata"]["annotations"]
    check(annotations["serving.kserve.io/deploymentMode"] == "RawDeployment", "deployment mode not explicit")
    check(annotations["serving.kserve.io/autoscalerClass"] == "external", "KServe must leave replicas to AIBrix")
    args = args_of(isvc)
    for flag in ("--model=meta-llama/Llama-3.1-8B-Instruct", "--served-model-name=meta-llama/Llama-3.1-8B-Instruct",
                 "--tensor-parallel-size=1", "--enable-prefix-caching"):
        check(flag in args, f"vLLM args lack {flag}: {args}")
    check(any(a.startswith("--kv-transfer-config=") and "LMCacheConnectorV1" in a for a in args), "no LMCache connector")
    res = container(isvc)["resources"]
    check(res["limits"]["nvidia.com/gpu"] == "1" and res["requests"]["nvidia.com/gpu"] == "1", f"GPU count: {res}")
    pa = find(docs, "PodAutoscaler")
    check(pa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                           "name": "us-east-k8s-portable-predictor"}, "PodAutoscaler target")
    source = pa["spec"]["metricsSources"][0]
    check(source == {"metricSourceType": "custom", "targetMetric": "vllm_ttft_p90_ms", "targetValue": "400"},
          f"TTFT metric source: {source}")
    adapter = find(docs, "ConfigMap", "-prometheus-adapter")
    rules = validate.load_yaml_documents(adapter["data"]["values.yaml"])[0]["rules"]["custom"]
    check(rules[0]["name"]["as"] == "vllm_ttft_p90_ms", "adapter rule name")
    pool = find(docs, "InferencePool")
    check(all(isvc["metadata"]["labels"].get(k) == v for k, v in pool["spec"]["selector"]["matchLabels"].items()),
          "InferencePool does not select the InferenceService's pods")
    check(pool["spec"]["targetPorts"] == [{"number": 8000}], "pool target port")
    epp = find(docs, "Deployment", "-epp")
    eargs = args_of(epp)
    check(eargs[0] == "epp" and "--profile-header=byoc_epp" in eargs and
          "--pool-name=us-east-k8s-portable" in eargs and "--pool-namespace=zumik-portable" in eargs,
          f"zumik epp args: {eargs}")
    check(container(epp)["image"].startswith("ghcr.io/zumik/zumik-portable:"), "EPP image")
    expect_zumik_epp_tls(docs, secret=None)
    config = validate.load_yaml_documents(find(docs, "ConfigMap", "-epp")["data"]["config.yaml"])[0]
    check(config["kind"] == "EndpointPickerConfig", "EPP config kind")
    check(any(p["type"] == "prefix-cache-affinity-filter" for p in config["plugins"]), "zumik affinity filter missing")
    route = find(docs, "HTTPRoute")
    check(route["spec"]["rules"][0]["backendRefs"][0]["kind"] == "InferencePool", "route backend")
    expect_route_profile_header(docs)
    job = find(docs, "Job", "-register")
    check(job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade", "register hook")
    check("--cluster-id" not in " ".join(args_of(job)), "registration must not pass a cluster id")
    check(not any(d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-operator") for d in docs),
          "heartbeat Deployment before registration")
    secret_volume = next(v for v in job["spec"]["template"]["spec"]["volumes"] if v["name"] == "api-key")
    check(secret_volume["secret"]["secretName"] == "zumik-control-plane" and
          secret_volume["secret"]["items"][0]["key"] == "api-key", "control-plane secret reference")
    dash = find(docs, "ConfigMap", "-dashboard")
    check(dash["metadata"]["labels"]["grafana_dashboard"] == "1", "dashboard sidecar label")
    dashboard = json.loads(dash["data"]["zumik-portable.json"])
    sla = [v for v in dashboard["templating"]["list"] if v["name"] == "ttft_sla_ms"][0]
    check(sla["query"] == "400", "dashboard SLA not wired to targetTtftMs")
    absent(docs, "PodMonitor")


def expect_route_profile_header(docs):
    # Responses through the Gateway carry the profile header whichever EPP flavor picks.
    filters = find(docs, "HTTPRoute")["spec"]["rules"][0].get("filters", [])
    check({"type": "ResponseHeaderModifier",
           "responseHeaderModifier": {"set": [{"name": "Agent-Execution-Profile", "value": "byoc_epp"}]}}
          in filters, f"route does not set the profile header: {filters}")


def expect_doc_upgrade(docs):
    operator = find(docs, "Deployment", "-operator")
    check("--cluster-id=byc_xxx" in args_of(operator), f"heartbeat args: {args_of(operator)}")
    check(not any(d["kind"] == "Job" for d in docs), "registration Job still rendered")


def expect_kserve_off(docs):
    absent(docs, "InferenceService")
    deployment = find(docs, "Deployment", "-predictor")
    check("replicas" not in deployment["spec"], "AIBrix owns replicas: Deployment must not set them")
    find(docs, "Service", "-predictor")
    check(find(docs, "PodAutoscaler")["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"],
          "PodAutoscaler must target the plain Deployment")


def expect_kserve_off_aibrix_off(docs):
    deployment = find(docs, "Deployment", "-predictor")
    check(deployment["spec"]["replicas"] == 1, "fixed replicas")
    absent(docs, "PodAutoscaler")


def expect_aibrix_off(docs):
    absent(docs, "PodAutoscaler")
    isvc = find(docs, "InferenceService")
    check(isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda", "request scaling class")
    metric = isvc["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]
    check("vllm:num_requests_running" in metric["metric"]["query"], "request-based query")
    check(metric["target"] == {"type": "AverageValue", "averageValue": "8"}, f"target {metric['target']}")


def expect_request_scaling_off(docs):
    isvc = find(docs, "InferenceService")
    check(isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "none", "class none")
    check("autoScaling" not in isvc["spec"]["predictor"], "no autoScaling")


def expect_router_off(docs):
    for kind in ("InferencePool", "HTTPRoute"):
        absent(docs, kind)
    check(not any(d["metadata"]["name"].endswith("-epp") for d in docs), "EPP objects rendered")


def expect_httproute_off(docs):
    absent(docs, "HTTPRoute")
    find(docs, "InferencePool")


def expect_lmcache_off(docs):
    isvc = find(docs, "InferenceService")
    check(container(isvc)["image"] == "vllm/vllm-openai:v0.11.0", "plain vLLM image without LMCache")
    check(not any(a.startswith("--kv-transfer-config") for a in args_of(isvc)), "kv-transfer-config set")
    check(not any(d["metadata"]["name"].endswith("-lmcache") for d in docs), "LMCache ConfigMap rendered")


def expect_backend(backend, check_config):
    def run(docs):
        config = lmcache_config(docs)
        check(config["chunk_size"] == 256 and config["local_cpu"] is True, f"{backend}: base keys")
        check_config(config, docs)
    return run


def _redis(config, docs):
    check(config["remote_url"] == "redis://redis-master:6379", "redis url")


def _mooncake(config, docs):
    check(config["remote_url"] == "mooncakestore://mooncake-master:50051", "mooncake url")
    extra = config["extra_config"]
    check(extra["metadata_server"] and extra["master_server_address"] and extra["local_hostname"] == "@POD_IP@",
          f"mooncake extra_config {extra}")
    c = container(find(docs, "InferenceService"))
    check(c["command"][0] == "/bin/sh" and "@POD_IP@" in c["command"][2], "mooncake POD_IP substitution")


def _s3(config, docs):
    check(config["remote_url"] == "s3://kv-bucket/llama", "s3 url")
    check(config["extra_config"]["region"] == "us-east-1", "s3 region")
    c = container(find(docs, "InferenceService"))
    check(c["envFrom"] == [{"secretRef": {"name": "aws-creds"}}], "s3 credentials")


def _nixl(config, docs):
    extra = config["extra_config"]
    check(extra["enable_nixl_storage"] is True and extra["nixl_backend"] == "POSIX", f"nixl {extra}")
    check(config["nixl_buffer_device"] == "cpu" and "nixl_buffer_size" not in config, "nixl cpu buffer")


def _cpu(config, docs):
    check("remote_url" not in config and config["max_local_cpu_size"] == 5, "cpu backend")


def expect_tp4(docs):
    isvc = find(docs, "InferenceService")
    check("--tensor-parallel-size=4" in args_of(isvc), "TP flag")
    res = container(isvc)["resources"]
    check(res["limits"]["nvidia.com/gpu"] == "4", f"GPU limit {res}")
    check(isvc["spec"]["predictor"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
          "GPU product node selector")


def expect_zumik_epp_tls(docs, secret):
    """TLS on ext-proc (as upstream's --secure-serving, what gateways expect), self-signed or from
    `secret`; kubelet's plaintext gRPC probes go to the health-only port."""
    epp = find(docs, "Deployment", "-epp")
    c = container(epp)
    check("--grpc-tls" in c["args"] and "--grpc-health-port=9003" in c["args"], f"EPP TLS args: {c['args']}")
    mounted = [m for m in c["volumeMounts"] if m["name"] == "tls"]
    if secret is None:
        check(not any(a.startswith("--grpc-cert") for a in c["args"]) and not mounted, "no certificate mounted")
    else:
        check("--grpc-cert=/etc/zumik/epp-tls/tls.crt" in c["args"] and "--grpc-key=/etc/zumik/epp-tls/tls.key" in c["args"],
              f"certificate args: {c['args']}")
        check(mounted == [{"name": "tls", "mountPath": "/etc/zumik/epp-tls", "readOnly": True}], f"mount {mounted}")
        volume = [v for v in epp["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"]
        check(volume == [{"name": "tls", "secret": {"secretName": secret}}], f"TLS volume {volume}")
    check(c["readinessProbe"]["grpc"] == {"port": 9003, "service": "envoy.service.ext_proc.v3.ExternalProcessor"},
          f"readiness probe {c['readinessProbe']}")
    check(c["livenessProbe"]["grpc"] == {"port": 9003, "service": "liveness"}, f"liveness probe {c['livenessProbe']}")
    check({"name": "grpc-health", "containerPort": 9003, "protocol": "TCP"} in c["ports"], f"ports {c['ports']}")
    service = find(docs, "Service", "-epp")
    check(service["spec"]["ports"][0]["appProtocol"] == "http2", "ext-proc Service appProtocol with TLS")


def expect_zumik_epp_plaintext(docs):
    c = container(find(docs, "Deployment", "-epp"))
    check("--grpc-tls" not in c["args"] and "--grpc-health-port=9003" in c["args"], f"plaintext EPP args {c['args']}")
    check(find(docs, "Service", "-epp")["spec"]["ports"][0]["appProtocol"] == "kubernetes.io/h2c", "h2c appProtocol")


def expect_upstream_epp(docs):
    epp = find(docs, "Deployment", "-epp")
    c = container(epp)
    check(c["image"] == "ghcr.io/llm-d/llm-d-router-endpoint-picker:v0.10.0", f"upstream image {c['image']}")
    for flag in ("--pool-name=us-east-k8s-portable", "--pool-namespace=zumik-portable", "--grpc-port=9002",
                 "--grpc-health-port=9003", "--metrics-port=9090", "--config-file=/etc/zumik/epp/config.yaml",
                 "--ha-enable-leader-election"):
        check(flag in c["args"], f"upstream EPP lacks {flag}: {c['args']}")
    check(c["readinessProbe"]["grpc"] == {"port": 9003, "service": "readiness"}, "HA readiness probe")
    expect_route_profile_header(docs)  # the upstream EPP does not add it itself
    role = find(docs, "Role", "-epp")
    check(any("leases" in r["resources"] for r in role["rules"]), "leader-election RBAC")
    config = validate.load_yaml_documents(find(docs, "ConfigMap", "-epp")["data"]["config.yaml"])[0]
    weights = {p["pluginRef"]: p.get("weight") for p in config["schedulingProfiles"][0]["plugins"]}
    check(weights == {"queue-scorer": 5, "kv-cache-utilization-scorer": 2, "prefix-cache-scorer": 3,
                      "max-score-picker": None}, f"scorer weights {weights}")


def expect_upstream_metrics_auth(docs):
    check("--metrics-endpoint-auth=true" in args_of(find(docs, "Deployment", "-epp")), "auth flag")
    secret = find(docs, "Secret", "-metrics-reader")
    check(secret["type"] == "kubernetes.io/service-account-token", "token Secret type")
    endpoint = find(docs, "ServiceMonitor", "-epp")["spec"]["endpoints"][0]
    check(endpoint["authorization"]["credentials"] == {"name": secret["metadata"]["name"], "key": "token"},
          "ServiceMonitor does not present the token")
    rules = find(docs, "ClusterRole", "-metrics-auth")["rules"]
    check(any("tokenreviews" in r.get("resources", []) for r in rules), "tokenreviews RBAC")


def expect_monitoring(docs):
    for kind, suffix in (("PodMonitor", "-model"), ("ServiceMonitor", "-epp"), ("ServiceMonitor", "-dcgm")):
        monitor = find(docs, kind, suffix)
        endpoints = monitor["spec"].get("podMetricsEndpoints") or monitor["spec"]["endpoints"]
        relabel = endpoints[0]["relabelings"][0]
        check(relabel == {"action": "replace", "targetLabel": "cluster", "replacement": "byc_7f3a"},
              f"{kind}{suffix} cluster label {relabel}")
    rule = find(docs, "PrometheusRule")
    records = [r["record"] for g in rule["spec"]["groups"] for r in g["rules"]]
    check("zumik:vllm_ttft_p90_ms" in records, f"recording rules {records}")
    adapter = find(docs, "ConfigMap", "-prometheus-adapter")
    check("zumik:vllm_ttft_p90_ms" in adapter["data"]["values.yaml"], "adapter reads the recording rule")


def expect_aibrix_gateway(docs):
    service = find(docs, "Service", "llama-3-1-8b")
    check(service["metadata"]["name"] == "llama-3-1-8b", "AIBrix Service name")
    isvc = find(docs, "InferenceService")
    check(isvc["metadata"]["labels"]["model.aibrix.ai/name"] == "llama-3-1-8b", "AIBrix model label")
    check("--served-model-name=llama-3-1-8b" in args_of(isvc), "served name")


KNATIVE_API = "serving.knative.dev/v1/Service"
KNATIVE = ["--set", "kserve.deploymentMode=Knative", "--set", "aibrix.autoscaler.enabled=false"]


def expect_knative(docs, mode="Knative"):
    """Knative mode: KPA on concurrency, requests through the queue-proxy, a pod Knative admits."""
    for kind in ("PodAutoscaler", "ScaledObject"):
        absent(docs, kind)
    isvc = find(docs, "InferenceService")
    annotations = isvc["metadata"]["annotations"]
    check(annotations["serving.kserve.io/deploymentMode"] == mode, "deployment mode")
    check("serving.kserve.io/autoscalerClass" not in annotations, "autoscalerClass is Standard-mode only")
    check(annotations["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev", "KPA class")
    predictor = isvc["spec"]["predictor"]
    check({k: predictor.get(k) for k in ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget")} ==
          {"minReplicas": 1, "maxReplicas": 4, "scaleMetric": "concurrency", "scaleTarget": 8},
          f"KPA envelope: {predictor}")
    check("autoScaling" not in predictor and "containerConcurrency" not in predictor, "no KEDA metrics, no hard limit")
    # PodSpec fields Knative refuses: the grace period always, a pod securityContext without its flag.
    for key in ("terminationGracePeriodSeconds", "securityContext"):
        check(key not in predictor, f"predictor sets {key}, which Knative refuses")
    vllm = container(isvc)
    check(vllm["ports"] == [{"name": "http1", "containerPort": 8000, "protocol": "TCP"}],
          f"Knative allows one port named http1/h2c/empty: {vllm['ports']}")
    # Knative renames the port user-port on the pod and rewrites only the liveness probe: a probe
    # naming http1 would find no such port (the startup probe would never pass). Numbers work.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check(vllm[probe]["httpGet"]["port"] == 8000, f"{probe} port must be the number in Knative mode")
    pod_annotations = predictor.get("annotations", {})
    check(pod_annotations.get("serving.knative.dev/progress-deadline") == "2100s",
          f"the revision's progress deadline must cover the startup probe (10 s x 180) + 300 s: {pod_annotations}")
    check(pod_annotations.get("autoscaling.knative.dev/target-utilization-percentage") == "100",
          "KPA's 70% default utilization would make the target 5.6, not 8")
    check(vllm["securityContext"]["runAsUser"] == 1000 and vllm["securityContext"]["runAsNonRoot"],
          "user moved to the container")
    check(not any(e.get("valueFrom", {}).get("fieldRef") for e in vllm.get("env", [])),
          "fieldRef env needs kubernetes.podspec-fieldref")
    pool = find(docs, "InferencePool")
    check(pool["spec"]["targetPorts"] == [{"number": 8012}], f"pool must target the queue-proxy: {pool['spec']}")
    epp = find(docs, "Deployment", "-epp")
    check("--model-server-metrics-port=8000" in args_of(epp),
          f"the EPP must scrape vLLM's port, not the queue-proxy's: {args_of(epp)}")
    monitor = find(docs, "PodMonitor")
    check(monitor["spec"]["podMetricsEndpoints"][0]["port"] == "user-port", "Knative names the pod port user-port")
    service = find(docs, "Service", "llama-3-1-8b")
    check(service["spec"]["ports"][0]["targetPort"] == 8012, "AIBrix Service through the queue-proxy")
    check(isvc["metadata"]["labels"]["model.aibrix.ai/port"] == "8012", "AIBrix pod port label")


KNATIVE_ALL = KNATIVE + ["--set", "monitoring.podMonitor.enabled=true", "--set", "aibrix.gateway.enabled=true",
                         "--set", "model.servedModelName=llama-3-1-8b"]


def expect_knative_serverless_h100(docs):
    expect_knative(docs, mode="Serverless")
    isvc = find(docs, "InferenceService")
    check(isvc["spec"]["predictor"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
          "GPU product pin")


def expect_minimal(docs):
    kinds = sorted({d["kind"] for d in docs})
    check(kinds == ["Deployment", "PodDisruptionBudget", "Service"], f"minimal kinds {kinds}")


def expect_nothing_extra(docs):
    pass


def expect_objectives_and_rewrites(docs):
    pool = find(docs, "InferencePool")["metadata"]["name"]
    objective = find(docs, "InferenceObjective", "batch")
    check(objective["apiVersion"] == "llm-d.ai/v1alpha2", "objective API version")
    check(objective["spec"] == {"priority": -1, "poolRef": {"group": "inference.networking.k8s.io",
                                                            "kind": "InferencePool", "name": pool}},
          f"objective spec: {objective['spec']}")
    check(find(docs, "InferenceObjective", "interactive")["spec"].get("priority") is None,
          "an objective without a priority renders none (the API's default 0)")
    rewrite = find(docs, "InferenceModelRewrite", "canary")
    check(rewrite["spec"]["poolRef"]["name"] == pool, "rewrite poolRef")
    check(rewrite["spec"]["rules"] == [{"matches": [{"model": {"value": "team-model"}}],
                                        "targets": [{"modelRewrite": "model-v1", "weight": 90},
                                                    {"modelRewrite": "model-v2", "weight": 10}]}],
          f"rewrite rules: {rewrite['spec']['rules']}")


LLMD_APIS = ["llm-d.ai/v1alpha2/InferenceObjective", "llm-d.ai/v1alpha2/InferenceModelRewrite"]
OBJECTIVES = ["--set", "router.objectives[0].name=batch", "--set", "router.objectives[0].priority=-1",
              "--set", "router.objectives[1].name=interactive"]
REWRITES = ["--set-json", 'router.modelRewrites=[{"name":"canary","rules":[{"matches":[{"model":{"value":"team-model"}}],'
            '"targets":[{"modelRewrite":"model-v1","weight":90},{"modelRewrite":"model-v2","weight":10}]}]}]']


MATRIX = [
    ("kserve-off", ["--set", "kserve.enabled=false"], ALL_APIS, expect_kserve_off),
    ("kserve-off-aibrix-off", ["--set", "kserve.enabled=false", "--set", "aibrix.autoscaler.enabled=false"],
     ["inference.networking.k8s.io/v1/InferencePool", "gateway.networking.k8s.io/v1/HTTPRoute"],
     expect_kserve_off_aibrix_off),
    ("aibrix-off", ["--set", "aibrix.autoscaler.enabled=false"], ALL_APIS, expect_aibrix_off),
    ("request-scaling-off", ["--set", "aibrix.autoscaler.enabled=false", "--set", "kserve.requestScaling.enabled=false"],
     DOC_APIS, expect_request_scaling_off),
    ("requests-waiting-metric", ["--set", "aibrix.autoscaler.enabled=false",
                                 "--set", "kserve.requestScaling.metric=requests_waiting"], ALL_APIS, expect_nothing_extra),
    ("router-off", ["--set", "router.enabled=false"], ALL_APIS, expect_router_off),
    ("httproute-off", ["--set", "router.httpRoute.enabled=false"], ALL_APIS, expect_httproute_off),
    ("lmcache-off", ["--set", "lmcache.enabled=false"], ALL_APIS, expect_lmcache_off),
    ("lmcache-cpu", ["--set", "lmcache.backend=cpu"], ALL_APIS, expect_backend("cpu", _cpu)),
    ("lmcache-redis", ["--set", "lmcache.backend=redis"], ALL_APIS, expect_backend("redis", _redis)),
    ("lmcache-mooncake", ["--set", "lmcache.backend=mooncake"], ALL_APIS, expect_backend("mooncake", _mooncake)),
    ("lmcache-s3", ["--set", "lmcache.backend=s3", "--set", "lmcache.s3.url=s3://kv-bucket/llama",
                    "--set", "lmcache.s3.credentialsSecret=aws-creds"], ALL_APIS, expect_backend("s3", _s3)),
    ("lmcache-nixl", ["--set", "lmcache.backend=nixl"], ALL_APIS, expect_backend("nixl", _nixl)),
    ("tp4-h100", ["--set", "model.tensorParallelSize=4", "--set", "runtime.gpusPerReplica=4",
                  "--set", "runtime.gpuProduct=NVIDIA-H100-80GB-HBM3"], ALL_APIS, expect_tp4),
    ("upstream-epp", ["--set", "router.epp.flavor=upstream", "--set", "router.epp.replicas=2",
                      "--set", "router.epp.scorers.upstream.queue=5"], ALL_APIS, expect_upstream_epp),
    ("epp-tls-secret", ["--set", "router.epp.tls.secretName=epp-cert"], ALL_APIS,
     lambda docs: expect_zumik_epp_tls(docs, secret="epp-cert")),
    ("epp-plaintext", ["--set", "router.epp.tls.enabled=false"], ALL_APIS, expect_zumik_epp_plaintext),
    ("upstream-epp-metrics-auth", ["--set", "router.epp.flavor=upstream", "--set", "router.epp.upstream.metricsEndpointAuth=true",
                                   "--set", "monitoring.serviceMonitor.enabled=true"], ALL_APIS, expect_upstream_metrics_auth),
    ("monitoring-on", ["--set", "operator.clusterId=byc_7f3a", "--set", "monitoring.podMonitor.enabled=true",
                       "--set", "monitoring.serviceMonitor.enabled=true", "--set", "monitoring.prometheusRule.enabled=true",
                       "--set", "monitoring.dcgmServiceMonitor.enabled=true"], ALL_APIS, expect_monitoring),
    ("aibrix-gateway", ["--set", "aibrix.gateway.enabled=true", "--set", "model.servedModelName=llama-3-1-8b"],
     ALL_APIS, expect_aibrix_gateway),
    ("dashboards-off", ["--set", "dashboards.enabled=false"], ALL_APIS,
     lambda docs: check(not any(d["metadata"]["name"].endswith("-dashboard") for d in docs), "dashboard rendered")),
    ("operator-off", ["--set", "operator.enabled=false"], ALL_APIS,
     lambda docs: check(not any("operator" in d["metadata"]["name"] or d["kind"] == "Job" for d in docs),
                        "operator objects rendered")),
    ("pdbs-off", ["--set", "runtime.pdb.enabled=false", "--set", "router.epp.pdb.enabled=false"], ALL_APIS,
     lambda docs: absent(docs, "PodDisruptionBudget")),
    ("minimal", ["--set", "kserve.enabled=false", "--set", "router.enabled=false", "--set", "aibrix.autoscaler.enabled=false",
                 "--set", "lmcache.enabled=false", "--set", "operator.enabled=false", "--set", "dashboards.enabled=false"],
     [], expect_minimal),
    ("skip-capability-checks", ["--set", "skipCapabilityChecks=true"], [], expect_nothing_extra),
    ("objectives-and-rewrites", OBJECTIVES + REWRITES, ALL_APIS + LLMD_APIS, expect_objectives_and_rewrites),
    ("knative-kpa", KNATIVE_ALL, ALL_APIS + [KNATIVE_API], expect_knative),
    ("knative-upstream-epp", KNATIVE + ["--set", "router.epp.flavor=upstream"], ALL_APIS + [KNATIVE_API],
     lambda docs: check("--model-server-metrics-port=8000" in args_of(find(docs, "Deployment", "-epp")),
                        "the upstream EPP must scrape vLLM's port in Knative mode")),
    ("knative-legacy-serverless-h100", ["--set", "kserve.deploymentMode=Serverless"] + KNATIVE_ALL[2:] +
     ["--set", "runtime.gpuProduct=NVIDIA-H100-80GB-HBM3"], ALL_APIS + [KNATIVE_API], expect_knative_serverless_h100),
    ("custom-epp-config", ["--set-string", "router.epp.customConfig=apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\n"],
     ALL_APIS, lambda docs: check(find(docs, "ConfigMap", "-epp")["data"]["config.yaml"].startswith("apiVersion: llm-d.ai"),
                                  "custom EPP config not used")),
]

NEGATIVE = [
    ("model-missing", [], ALL_APIS, ["model.served is required"]),
    ("tp-above-gpus", MODEL + ["--set", "model.tensorParallelSize=4", "--set", "runtime.gpusPerReplica=2"], ALL_APIS,
     ["model.tensorParallelSize (4) is larger than runtime.gpusPerReplica (2)"]),
    ("unknown-backend", MODEL + ["--set", "lmcache.backend=memcached"], ALL_APIS,
     ["/lmcache/backend", "'cpu', 'redis', 'mooncake', 's3', 'nixl'"]),
    ("zero-ttft", MODEL + ["--set", "aibrix.autoscaler.targetTtftMs=0"], ALL_APIS,
     ["aibrix.autoscaler.targetTtftMs must be a positive number of milliseconds (got 0)"]),
    ("negative-ttft", MODEL + ["--set", "aibrix.autoscaler.targetTtftMs=-250"], ALL_APIS,
     ["aibrix.autoscaler.targetTtftMs must be a positive number"]),
    ("aibrix-min-above-max", MODEL + ["--set", "aibrix.autoscaler.minReplicas=5"], ALL_APIS,
     ["aibrix.autoscaler.minReplicas (5) is larger than aibrix.autoscaler.maxReplicas (4)"]),
    ("kserve-min-above-max", MODEL + ["--set", "kserve.minReplicas=9"], ALL_APIS,
     ["kserve.minReplicas (9) is larger than kserve.maxReplicas (4)"]),
    ("gpu-in-resources", MODEL + ["--set", "runtime.resources.limits.nvidia\\.com/gpu=2"], ALL_APIS,
     ["runtime.resources must not set nvidia.com/gpu"]),
    ("s3-without-url", MODEL + ["--set", "lmcache.backend=s3"], ALL_APIS, ["lmcache.backend=s3 needs lmcache.s3.url"]),
    ("redis-bad-url", MODEL + ["--set", "lmcache.backend=redis", "--set", "lmcache.redis.url=redis-master:6379"],
     ALL_APIS, ["lmcache.redis.url \"redis-master:6379\" must start with redis://"]),
    ("nixl-posix-on-cuda", MODEL + ["--set", "lmcache.backend=nixl", "--set", "lmcache.nixl.bufferDevice=cuda"],
     ALL_APIS, ["lmcache.nixl.storageBackend=POSIX needs lmcache.nixl.bufferDevice=cpu"]),
    ("bad-cluster-id", MODEL + ["--set", "operator.clusterId=us-east"], ALL_APIS,
     ["operator.clusterId \"us-east\" is not a cluster id: ids start with byc_"]),
    ("unknown-epp-flavor", MODEL + ["--set", "router.epp.flavor=envoy"], ALL_APIS, ["/router/epp/flavor", "'zumik', 'upstream'"]),
    ("unknown-deployment-mode", MODEL + ["--set", "kserve.deploymentMode=ModelMesh"], ALL_APIS,
     ["/kserve/deploymentMode", "'Knative', 'Serverless'"]),
    ("knative-with-aibrix", MODEL + ["--set", "kserve.deploymentMode=Knative"], ALL_APIS + [KNATIVE_API],
     ["kserve.deploymentMode=Knative scales with Knative's KPA", "set aibrix.autoscaler.enabled=false"]),
    ("knative-scale-to-zero", MODEL + KNATIVE + ["--set", "kserve.minReplicas=0"], ALL_APIS + [KNATIVE_API],
     ["kserve.minReplicas=0 in Knative mode would scale to zero", "set kserve.minReplicas to 1 or more"]),
    ("knative-reserved-port", MODEL + KNATIVE + ["--set", "runtime.port=9091"], ALL_APIS + [KNATIVE_API],
     ["runtime.port 9091 is reserved for Knative's queue-proxy"]),
    ("knative-tls-port", MODEL + KNATIVE + ["--set", "runtime.port=8112"], ALL_APIS + [KNATIVE_API],
     ["runtime.port 8112 is reserved for Knative's queue-proxy"]),
    ("no-knative-crd", MODEL + KNATIVE, ALL_APIS,
     ["kserve.deploymentMode=Knative requires the services.serving.knative.dev CRD", "Install Knative Serving",
      "set kserve.deploymentMode=Standard"]),
    ("kpa-target-zero", MODEL + KNATIVE + ["--set", "kserve.kpa.targetConcurrency=0"], ALL_APIS + [KNATIVE_API],
     ["/kserve/kpa/targetConcurrency"]),
    ("typo-key", MODEL + ["--set", "runtime.gpusPerReplicas=2"], ALL_APIS, ["gpusPerReplicas"]),
    ("aibrix-gateway-bad-name", MODEL + ["--set", "aibrix.gateway.enabled=true"], ALL_APIS,
     ["aibrix.gateway.enabled needs a served model name that is a DNS label", "set model.servedModelName"]),
    ("no-kserve-crd", MODEL, [a for a in ALL_APIS if "kserve" not in a],
     ["kserve.enabled=true requires the inferenceservices.serving.kserve.io CRD", "set kserve.enabled=false"]),
    ("no-inferencepool-crd", MODEL, [a for a in ALL_APIS if "InferencePool" not in a],
     ["router.enabled=true requires the inferencepools.inference.networking.k8s.io CRD", "set router.enabled=false"]),
    ("no-llmd-crds", MODEL + OBJECTIVES, ALL_APIS,
     ["router.objectives requires the inferenceobjectives.llm-d.ai CRD", "set router.objectives=[]"]),
    ("rewrite-without-targets", MODEL + ["--set-json", 'router.modelRewrites=[{"name":"x","rules":[{"targets":[]}]}]'],
     ALL_APIS + LLMD_APIS, ["/router/modelRewrites/0/rules/0/targets"]),
    ("no-httproute-crd", MODEL, [a for a in ALL_APIS if "HTTPRoute" not in a],
     ["requires the httproutes.gateway.networking.k8s.io CRD", "set router.httpRoute.enabled=false"]),
    ("no-aibrix-crd", MODEL, [a for a in ALL_APIS if "aibrix" not in a],
     ["aibrix.autoscaler.enabled=true requires the podautoscalers.autoscaling.aibrix.ai CRD",
      "set aibrix.autoscaler.enabled=false"]),
    ("no-keda-crd", MODEL + ["--set", "aibrix.autoscaler.enabled=false"], DOC_APIS,
     ["requires the scaledobjects.keda.sh CRD", "set kserve.requestScaling.enabled=false"]),
    ("no-prometheus-operator", MODEL + ["--set", "monitoring.podMonitor.enabled=true"], DOC_APIS,
     ["monitoring.podMonitor.enabled=true requires the podmonitors.monitoring.coreos.com CRD",
      "set monitoring.podMonitor.enabled=false"]),
    ("no-prometheusrule-crd", MODEL + ["--set", "monitoring.prometheusRule.enabled=true"], DOC_APIS,
     ["requires the prometheusrules.monitoring.coreos.com CRD", "set monitoring.prometheusRule.enabled=false"]),
]


def validate_all(schemas, docs, label):
    errors = []
    for doc in docs:
        errors += schemas.validate(doc)
    errors += pod_security_errors(docs)
    if errors:
        raise Failure(f"{label}: {len(errors)} invalid:\n  " + "\n  ".join(errors[:40]))


def run_cases(cases, workers=4):
    """Runs the cases (helm subprocesses dominate, so a few at a time) and reports each."""
    from concurrent.futures import ThreadPoolExecutor

    def attempt(fn):
        try:
            fn()
            return None
        except Failure as e:
            return str(e)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(attempt, [fn for _, fn in cases]))
    failures = []
    for (name, _), error in zip(cases, outcomes):
        if error is None:
            print(f"ok    {name}")
        else:
            print(f"FAIL  {name}: {error}")
            failures.append(name)
    print(f"{len(cases) - len(failures)}/{len(cases)} passed")
    return 1 if failures else 0


def cmd_lint(chart, _):
    def lint(extra):
        def run():
            result = chart.run(["lint", "--strict", chart.path] + extra)
            check(result.returncode == 0, f"helm lint failed:\n{result.stdout}\n{result.stderr}")
            check("0 chart(s) failed" in result.stdout, result.stdout)
        return run
    def readme_lists_every_value():
        # README.md's values table and values.yaml stay in step: every leaf is described and
        # every described key exists.
        with open(os.path.join(chart.path, "values.yaml")) as f:
            values = validate.yaml.safe_load(f)
        with open(os.path.join(chart.path, "README.md")) as f:
            keys = [line.split("`")[1] for line in f if line.startswith("| `")]

        def resolve(key):
            node = values
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    return False
                node = node[part]
            return True

        def leaves(node, prefix=""):
            for k, v in node.items():
                path = f"{prefix}.{k}" if prefix else k
                if isinstance(v, dict) and v:
                    yield from leaves(v, path)
                else:
                    yield path
        unknown = [k for k in keys if not resolve(k)]
        check(not unknown, f"README documents keys values.yaml lacks: {unknown}")
        undocumented = [p for p in leaves(values) if not any(p == k or p.startswith(k + ".") for k in keys)]
        check(not undocumented, f"values without a README row: {undocumented}")

    def dashboard_has_the_panels():
        with open(os.path.join(chart.path, "dashboards", "zumik-portable.json")) as f:
            dashboard = json.load(f)
        titles = {p["title"] for p in dashboard["panels"]}
        wanted = {"GPU utilization", "TTFT p90 vs SLA", "LMCache hit ratio", "Replica count", "EPP queue depth",
                  "Request rate", "Errors", "Prefix-cache hit rate", "KV cache usage"}
        check(wanted <= titles, f"dashboard lacks panels {wanted - titles}")
        variables = {v["name"] for v in dashboard["templating"]["list"]}
        check({"cluster", "ttft_sla_ms"} <= variables, f"dashboard variables {variables}")
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                if "vector(" not in target["expr"]:
                    check('cluster=~"$cluster"' in target["expr"], f"{panel['title']}: query ignores $cluster")

    cases = [("readme-values-table", readme_lists_every_value), ("dashboard-panels", dashboard_has_the_panels),
             ("lint-strict-model", lambda: lint(MODEL)()),
             ("lint-strict-all-on", lambda: lint(MODEL + ["--set", "operator.clusterId=byc_1",
                                                          "--set", "monitoring.podMonitor.enabled=true",
                                                          "--set", "monitoring.prometheusRule.enabled=true",
                                                          "--set", "router.epp.flavor=upstream"])())]
    return run_cases(cases)


def cmd_matrix(chart, _):
    schemas = validate.SchemaSet()

    def case(name, sets, apis, expect):
        def run():
            docs = validate.load_yaml_documents(chart.render(MODEL + sets, apis))
            check(docs, "nothing rendered")
            validate_all(schemas, docs, name)
            expect(docs)
        return (name, run)
    def knative_notes():
        # NOTES name KPA and the config-features flags Knative needs for the pod fields set.
        out = chart.run_ok(["install", "us-east", chart.path] + MODEL + KNATIVE +
                           ["--set", "runtime.gpuProduct=NVIDIA-H100-80GB-HBM3", "--set", "lmcache.backend=mooncake",
                            "--dry-run=client", "--set", "skipCapabilityChecks=true"])
        notes = out.split("NOTES:", 1)[-1]
        check("Autoscaling: KServe KPA (Knative), 8 requests in flight per replica, 1..4 replicas." in notes,
              f"NOTES: KPA line\n{notes}")
        flags = ('"kubernetes.podspec-tolerations":"enabled","kubernetes.podspec-nodeselector":"enabled",'
                 '"kubernetes.podspec-fieldref":"enabled"')
        check("kubectl -n knative-serving patch configmap config-features --type merge -p "
              "'{\"data\":{" + flags + "}}'" in notes, f"NOTES: feature flags\n{notes}")
        check("kubectl -n knative-serving patch knativeserving knative-serving --type merge -p "
              "'{\"spec\":{\"config\":{\"features\":{" + flags + "}}}}'" in notes,
              f"NOTES: feature flags through the Knative Operator\n{notes}")
    return run_cases([case(*c) for c in MATRIX] + [("knative-notes", knative_notes)])


def _doc_args(command):
    """The doc's helm command as an argument list (without the leading 'helm')."""
    args = shlex.split(command)
    assert args[0] == "helm"
    return args[1:]


def cmd_doc(chart, _):
    schemas = validate.SchemaSet()
    api_flags = [x for api in DOC_APIS for x in ("--api-versions", api)]
    install = _doc_args(DOC_INSTALL)

    def install_without_prerequisites():
        # The exact command as a client-side dry run: Helm then knows no CRDs, like a cluster
        # without KServe, so it must stop with the message naming the CRD and the switch.
        result = chart.run(install + ["--dry-run=client"])
        check(result.returncode != 0, "installed without the KServe CRDs")
        check("requires the inferenceservices.serving.kserve.io CRD" in result.stderr and
              "set kserve.enabled=false" in result.stderr, f"unclear prerequisite error:\n{result.stderr}")

    def install_on_prerequisite_cluster():
        # The same words rendered against a cluster serving the doc's prerequisite APIs
        # (helm install has no --api-versions; helm template takes the same arguments).
        docs = validate.load_yaml_documents(chart.run_ok(["template"] + install[1:] + api_flags))
        validate_all(schemas, docs, "doc-install")
        expect_doc_install(docs)

    def install_notes():
        # NOTES.txt of the exact install: how to read the id and the exact upgrade that wires it.
        out = chart.run_ok(install + ["--dry-run=client", "--set", "skipCapabilityChecks=true"])
        notes = out.split("NOTES:", 1)[-1]
        check("kubectl -n zumik-portable logs job/us-east-k8s-portable-register" in notes, "NOTES: reading the id")
        check("kubectl -n zumik-portable get configmap us-east-zumik-cluster" in notes, "NOTES: id ConfigMap")
        check("helm upgrade us-east ./infra/k8s-portable --namespace zumik-portable --reuse-values "
              "--set operator.clusterId=byc_xxx" in notes, f"NOTES: exact upgrade command\n{notes}")

    def upgrade():
        # --reuse-values keeps the install's --set values; a render with both sets is what the
        # upgrade applies (helm upgrade itself needs the release in a cluster).
        up = _doc_args(DOC_UPGRADE)
        check(up[:3] == ["upgrade", "us-east", "./infra/k8s-portable"] and "--reuse-values" in up, "doc upgrade")
        sets = install[install.index("--set"):] + up[up.index("--set"):]
        docs = validate.load_yaml_documents(chart.render(sets, DOC_APIS))
        validate_all(schemas, docs, "doc-upgrade")
        expect_doc_upgrade(docs)

    def secret_matches_chart():
        kubectl = shutil.which("kubectl")
        args = shlex.split(DOC_SECRET)
        if kubectl is None:
            print("      (kubectl not installed: checking the command's words only)")
            check("zumik-control-plane" in args and "--from-literal=api-key=zk_live_xxx" in args, DOC_SECRET)
            return
        result = subprocess.run([kubectl] + args[1:] + ["--dry-run=client", "-o", "json"],
                                capture_output=True, text=True, timeout=30)
        check(result.returncode == 0, f"kubectl: {result.stderr}")
        secret = json.loads(result.stdout)
        check(secret["metadata"]["name"] == "zumik-control-plane" and "api-key" in secret["data"],
              "doc secret does not match operator.controlPlane defaults")

    return run_cases([("doc-install-without-prerequisites", install_without_prerequisites),
                      ("doc-install", install_on_prerequisite_cluster), ("doc-install-notes", install_notes),
                      ("doc-upgrade", upgrade),
                      ("doc-secret", secret_matches_chart)])


def cmd_negative(chart, _):
    def case(name, sets, apis, expected):
        def run():
            result = chart.template(sets, apis)
            check(result.returncode != 0, f"rendered although it should fail ({' '.join(sets)})")
            for text in expected:
                check(text in result.stderr, f"error lacks {text!r}:\n{result.stderr[-1500:]}")
        return (name, run)
    return run_cases([case(*c) for c in NEGATIVE])


GOLDEN = [("doc-install.yaml", _doc_args(DOC_INSTALL)[_doc_args(DOC_INSTALL).index("--set"):]),
          ("doc-upgrade.yaml", _doc_args(DOC_INSTALL)[_doc_args(DOC_INSTALL).index("--set"):]
           + ["--set", "operator.clusterId=byc_xxx"])]


def cmd_golden(chart, options):
    def case(filename, sets):
        def run():
            rendered = chart.render(sets, DOC_APIS)
            path = os.path.join(GOLDEN_DIR, filename)
            if options.update:
                os.makedirs(GOLDEN_DIR, exist_ok=True)
                with open(path, "w") as f:
                    f.write(rendered)
                print(f"      wrote {path}")
                return
            with open(path) as f:
                golden = f.read()
            if rendered != golden:
                import difflib
                diff = "".join(list(difflib.unified_diff(golden.splitlines(True), rendered.splitlines(True),
                                                         "golden/" + filename, "rendered"))[:80])
                raise Failure(f"rendering differs from the reviewed golden file (rerun with --update "
                              f"after reviewing):\n{diff}")
        return (filename, run)
    return run_cases([case(*c) for c in GOLDEN])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--helm", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--update", action="store_true", help="rewrite the golden files")
    parser.add_argument("suite", choices=["lint", "matrix", "doc", "negative", "golden"])
    options = parser.parse_args()
    if not os.access(options.helm, os.X_OK):
        print(f"helm not found at {options.helm} (scripts/bootstrap installs it)", file=sys.stderr)
        return 1
    chart = Chart(options.helm, options.repo)
    return {"lint": cmd_lint, "matrix": cmd_matrix, "doc": cmd_doc, "negative": cmd_negative,
            "golden": cmd_golden}[options.suite](chart, options)


if __name__ == "__main__":
    sys.exit(main())
