{{/* Names, labels and the checks every render runs (values consistency, cluster prerequisites). */}}

{{- define "zp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "zp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "zp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "zp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: zumik-portable
{{- end -}}

{{/* Selector labels of one component (model, epp, operator). */}}
{{- define "zp.selector" -}}
app.kubernetes.io/name: {{ include "zp.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The label the InferencePool, PodMonitor and PDB select vLLM pods by; KServe copies the
InferenceService's metadata.labels onto the predictor pods. */}}
{{- define "zp.modelSelector" -}}
zumik.ai/pool: {{ include "zp.poolName" . }}
{{- end -}}

{{- define "zp.isvcName" -}}{{ include "zp.fullname" . }}{{- end -}}
{{- define "zp.poolName" -}}{{ default (include "zp.fullname" .) .Values.router.pool.name }}{{- end -}}
{{- define "zp.eppName" -}}{{ include "zp.fullname" . }}-epp{{- end -}}
{{/* "true" when the EPP serves TLS on ext-proc (upstream: secureServing; ours: tls.enabled), else "". */}}
{{- define "zp.eppTls" -}}
{{- $e := .Values.router.epp -}}
{{- if ternary $e.upstream.secureServing $e.tls.enabled (eq $e.flavor "upstream") }}true{{ end -}}
{{- end -}}
{{- define "zp.operatorName" -}}{{ include "zp.fullname" . }}-operator{{- end -}}
{{/* The predictor Deployment: KServe names it <isvc>-predictor; the plain Deployment matches. */}}
{{- define "zp.predictorName" -}}{{ include "zp.isvcName" . }}-predictor{{- end -}}
{{/* "true" when KServe runs the predictor in Knative mode (legacy name Serverless), else "". */}}
{{- define "zp.knative" -}}
{{- if and .Values.kserve.enabled (has .Values.kserve.deploymentMode (list "Knative" "Serverless")) }}true{{ end -}}
{{- end -}}
{{/* The port routers send requests to: in Knative mode Knative's queue-proxy (8012, knative
serving pkg/apis/networking/ports.go BackendHTTPPort), so KPA counts every request; else vLLM's. */}}
{{- define "zp.servingPort" -}}{{ if include "zp.knative" . }}8012{{ else }}{{ .Values.runtime.port }}{{ end }}{{- end -}}
{{/* The Knative config-features flags (ConfigMap knative-serving/config-features) the vLLM pod
needs: Knative refuses these PodSpec fields while their flag is off (the default). */}}
{{- define "zp.knativeFlags" -}}
{{- $flags := list -}}
{{- if .Values.runtime.tolerations }}{{ $flags = append $flags "kubernetes.podspec-tolerations" }}{{ end -}}
{{- if include "zp.vllmNodeSelector" . }}{{ $flags = append $flags "kubernetes.podspec-nodeselector" }}{{ end -}}
{{- if .Values.runtime.affinity }}{{ $flags = append $flags "kubernetes.podspec-affinity" }}{{ end -}}
{{- if and .Values.lmcache.enabled (eq .Values.lmcache.backend "mooncake") }}{{ $flags = append $flags "kubernetes.podspec-fieldref" }}{{ end -}}
{{- join " " $flags -}}
{{- end -}}
{{/* The vLLM container's port name: Knative allows only "", http1 or h2c (and renames it user-port
on the pods: knative serving pkg/apis/serving/k8s_validation.go, revision/resources/deploy.go). */}}
{{- define "zp.vllmPortName" -}}{{ if include "zp.knative" . }}http1{{ else }}http{{ end }}{{- end -}}
{{/* The probes' port. Knative renames the port user-port on the pod and rewrites only the
liveness probe's (queue-proxy runs the readiness probe), so a named startup probe would look
for a port that is not there: in Knative mode the probes give the number. */}}
{{- define "zp.probePort" -}}{{ if include "zp.knative" . }}{{ .Values.runtime.port }}{{ else }}http{{ end }}{{- end -}}
{{- define "zp.servedModelName" -}}{{ default .Values.model.served .Values.model.servedModelName }}{{- end -}}
{{- define "zp.clusterConfigMap" -}}{{ .Release.Name }}-zumik-cluster{{- end -}}

{{- define "zp.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "zp.runtimeImage" -}}
{{- if and .Values.lmcache.enabled .Values.lmcache.image.repository -}}
{{- printf "%s:%s" .Values.lmcache.image.repository .Values.lmcache.image.tag -}}
{{- else -}}
{{- printf "%s:%s" .Values.runtime.image.repository .Values.runtime.image.tag -}}
{{- end -}}
{{- end -}}

{{/* cluster=<byc_id> on every scraped series. */}}
{{- define "zp.clusterLabel" -}}
{{- default (default .Release.Name .Values.operator.clusterId) .Values.monitoring.cluster -}}
{{- end -}}

{{/* Hardened container settings; readOnlyRootFilesystem is passed per component. */}}
{{- define "zp.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnly }}
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- with .uid }}
runAsUser: {{ . }}
runAsGroup: {{ . }}
{{- end }}
{{- end -}}

{{- define "zp.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Fails when a switched-on component's CRD is missing from the cluster. */}}
{{- define "zp.requireApi" -}}
{{- if not .ctx.Values.skipCapabilityChecks -}}
{{- if not (.ctx.Capabilities.APIVersions.Has .gvk) -}}
{{- fail (printf "\n%s requires the %s CRD (%s, API %s), which this cluster does not serve. Install %s, or set %s." .what .crd .gvk (dir .gvk) .install .off) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "zp.validate" -}}
{{- $v := .Values -}}
{{- if not $v.model.served -}}
{{- fail "\nmodel.served is required: the Hugging Face id of the model to serve, e.g. --set model.served=meta-llama/Llama-3.1-8B-Instruct" -}}
{{- end -}}
{{- if lt (int $v.runtime.gpusPerReplica) 1 -}}
{{- fail (printf "\nruntime.gpusPerReplica must be at least 1 (got %v): vLLM here serves on GPUs" $v.runtime.gpusPerReplica) -}}
{{- end -}}
{{- if gt (int $v.model.tensorParallelSize) (int $v.runtime.gpusPerReplica) -}}
{{- fail (printf "\nmodel.tensorParallelSize (%v) is larger than runtime.gpusPerReplica (%v): each replica needs one GPU per tensor-parallel rank. Raise runtime.gpusPerReplica with it, e.g. --set model.tensorParallelSize=4 --set runtime.gpusPerReplica=4" $v.model.tensorParallelSize $v.runtime.gpusPerReplica) -}}
{{- end -}}
{{- if hasKey (default dict $v.runtime.resources.limits) "nvidia.com/gpu" -}}
{{- fail "\nruntime.resources must not set nvidia.com/gpu: the chart sets it from runtime.gpusPerReplica" -}}
{{- end -}}
{{- if hasKey (default dict $v.runtime.resources.requests) "nvidia.com/gpu" -}}
{{- fail "\nruntime.resources must not set nvidia.com/gpu: the chart sets it from runtime.gpusPerReplica" -}}
{{- end -}}
{{- if not (has $v.lmcache.backend (list "cpu" "redis" "mooncake" "s3" "nixl")) -}}
{{- fail (printf "\nlmcache.backend %q is unknown: use one of cpu, redis, mooncake, s3, nixl" $v.lmcache.backend) -}}
{{- end -}}
{{- if and $v.lmcache.enabled (eq $v.lmcache.backend "s3") (not $v.lmcache.s3.url) -}}
{{- fail "\nlmcache.backend=s3 needs lmcache.s3.url (s3://bucket/prefix)" -}}
{{- end -}}
{{- if and $v.lmcache.enabled (eq $v.lmcache.backend "redis") (not (regexMatch "^(redis|rediss|redis-sentinel|unix)://" $v.lmcache.redis.url)) -}}
{{- fail (printf "\nlmcache.redis.url %q must start with redis://, rediss://, redis-sentinel:// or unix://" $v.lmcache.redis.url) -}}
{{- end -}}
{{- if and $v.lmcache.enabled (eq $v.lmcache.backend "nixl") (ne $v.lmcache.nixl.bufferDevice "cpu") (has $v.lmcache.nixl.storageBackend (list "POSIX" "HF3FS" "OBJ")) -}}
{{- fail (printf "\nlmcache.nixl.storageBackend=%s needs lmcache.nixl.bufferDevice=cpu" $v.lmcache.nixl.storageBackend) -}}
{{- end -}}
{{- if $v.aibrix.autoscaler.enabled -}}
{{- if le (float64 $v.aibrix.autoscaler.targetTtftMs) 0.0 -}}
{{- fail (printf "\naibrix.autoscaler.targetTtftMs must be a positive number of milliseconds (got %v)" $v.aibrix.autoscaler.targetTtftMs) -}}
{{- end -}}
{{- if gt (int $v.aibrix.autoscaler.minReplicas) (int $v.aibrix.autoscaler.maxReplicas) -}}
{{- fail (printf "\naibrix.autoscaler.minReplicas (%v) is larger than aibrix.autoscaler.maxReplicas (%v)" $v.aibrix.autoscaler.minReplicas $v.aibrix.autoscaler.maxReplicas) -}}
{{- end -}}
{{- end -}}
{{- if and $v.kserve.enabled (gt (int $v.kserve.minReplicas) (int $v.kserve.maxReplicas)) -}}
{{- fail (printf "\nkserve.minReplicas (%v) is larger than kserve.maxReplicas (%v)" $v.kserve.minReplicas $v.kserve.maxReplicas) -}}
{{- end -}}
{{- if include "zp.knative" . -}}
{{- if $v.aibrix.autoscaler.enabled -}}
{{- fail (printf "\nkserve.deploymentMode=%s scales with Knative's KPA, and AIBrix's PodAutoscaler needs the predictor Deployment of the Standard mode: set aibrix.autoscaler.enabled=false (KPA scales on kserve.kpa.targetConcurrency), or kserve.deploymentMode=Standard" $v.kserve.deploymentMode) -}}
{{- end -}}
{{- if and (lt (int $v.kserve.minReplicas) 1) (or $v.router.enabled $v.aibrix.gateway.enabled) -}}
{{- fail (printf "\nkserve.minReplicas=0 in %s mode would scale to zero, and the router sends requests to pods directly, never through Knative's activator, so nothing would scale back up: set kserve.minReplicas to 1 or more" $v.kserve.deploymentMode) -}}
{{- end -}}
{{- if has (int $v.runtime.port) (list 8008 8012 8013 8022 8112 9090 9091) -}}
{{- fail (printf "\nruntime.port %v is reserved for Knative's queue-proxy in %s mode (8008, 8012, 8013, 8022, 8112, 9090, 9091): choose another (default 8000)" $v.runtime.port $v.kserve.deploymentMode) -}}
{{- end -}}
{{- end -}}
{{- if and $v.aibrix.gateway.enabled (not (regexMatch "^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$" (include "zp.servedModelName" .))) -}}
{{- fail (printf "\naibrix.gateway.enabled needs a served model name that is a DNS label (AIBrix routes to a Service of that name): %q is not; set model.servedModelName, e.g. llama-3-1-8b-instruct" (include "zp.servedModelName" .)) -}}
{{- end -}}
{{- if not (has $v.router.epp.flavor (list "zumik" "upstream")) -}}
{{- fail (printf "\nrouter.epp.flavor %q is unknown: use zumik or upstream" $v.router.epp.flavor) -}}
{{- end -}}
{{- if and $v.operator.enabled (not $v.operator.controlPlane.url) -}}
{{- fail "\noperator.controlPlane.url is required when operator.enabled" -}}
{{- end -}}
{{- if and $v.operator.clusterId (not (hasPrefix "byc_" $v.operator.clusterId)) -}}
{{- fail (printf "\noperator.clusterId %q is not a cluster id: ids start with byc_ (the registration Job prints it)" $v.operator.clusterId) -}}
{{- end -}}
{{- if $v.kserve.enabled -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "serving.kserve.io/v1beta1/InferenceService" "crd" "inferenceservices.serving.kserve.io" "what" "kserve.enabled=true" "install" "KServe (serving.kserve.io CRDs)" "off" "kserve.enabled=false (plain Deployment + Service)") -}}
{{- if include "zp.knative" . -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "serving.knative.dev/v1/Service" "crd" "services.serving.knative.dev" "what" (printf "kserve.deploymentMode=%s" $v.kserve.deploymentMode) "install" "Knative Serving" "off" "kserve.deploymentMode=Standard") -}}
{{- else if and (not $v.aibrix.autoscaler.enabled) $v.kserve.requestScaling.enabled -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "keda.sh/v1alpha1/ScaledObject" "crd" "scaledobjects.keda.sh" "what" "KServe request-based scaling in RawDeployment mode (kserve.enabled=true, aibrix.autoscaler.enabled=false)" "install" "KEDA" "off" "kserve.requestScaling.enabled=false (fixed kserve.minReplicas replicas)") -}}
{{- end -}}
{{- end -}}
{{- if $v.router.enabled -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "inference.networking.k8s.io/v1/InferencePool" "crd" "inferencepools.inference.networking.k8s.io" "what" "router.enabled=true" "install" "the Gateway API Inference Extension CRDs (v1.x)" "off" "router.enabled=false") -}}
{{- if $v.router.objectives -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "llm-d.ai/v1alpha2/InferenceObjective" "crd" "inferenceobjectives.llm-d.ai" "what" "router.objectives" "install" "the llm-d-router CRDs (llm-d.ai)" "off" "router.objectives=[]") -}}
{{- end -}}
{{- if $v.router.modelRewrites -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "llm-d.ai/v1alpha2/InferenceModelRewrite" "crd" "inferencemodelrewrites.llm-d.ai" "what" "router.modelRewrites" "install" "the llm-d-router CRDs (llm-d.ai)" "off" "router.modelRewrites=[]") -}}
{{- end -}}
{{- if $v.router.httpRoute.enabled -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "gateway.networking.k8s.io/v1/HTTPRoute" "crd" "httproutes.gateway.networking.k8s.io" "what" "router.httpRoute.enabled=true" "install" "the Gateway API CRDs (standard channel)" "off" "router.httpRoute.enabled=false") -}}
{{- end -}}
{{- end -}}
{{- if $v.aibrix.autoscaler.enabled -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "autoscaling.aibrix.ai/v1alpha1/PodAutoscaler" "crd" "podautoscalers.autoscaling.aibrix.ai" "what" "aibrix.autoscaler.enabled=true" "install" "AIBrix (autoscaling.aibrix.ai CRDs)" "off" "aibrix.autoscaler.enabled=false (KServe request-based scaling)") -}}
{{- end -}}
{{- if $v.monitoring.podMonitor.enabled -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "monitoring.coreos.com/v1/PodMonitor" "crd" "podmonitors.monitoring.coreos.com" "what" "monitoring.podMonitor.enabled=true" "install" "the Prometheus operator" "off" "monitoring.podMonitor.enabled=false") -}}
{{- end -}}
{{- if $v.monitoring.serviceMonitor.enabled -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "monitoring.coreos.com/v1/ServiceMonitor" "crd" "servicemonitors.monitoring.coreos.com" "what" "monitoring.serviceMonitor.enabled=true" "install" "the Prometheus operator" "off" "monitoring.serviceMonitor.enabled=false") -}}
{{- end -}}
{{- if $v.monitoring.dcgmServiceMonitor.enabled -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "monitoring.coreos.com/v1/ServiceMonitor" "crd" "servicemonitors.monitoring.coreos.com" "what" "monitoring.dcgmServiceMonitor.enabled=true" "install" "the Prometheus operator" "off" "monitoring.dcgmServiceMonitor.enabled=false") -}}
{{- end -}}
{{- if $v.monitoring.prometheusRule.enabled -}}
{{- include "zp.requireApi" (dict "ctx" . "gvk" "monitoring.coreos.com/v1/PrometheusRule" "crd" "prometheusrules.monitoring.coreos.com" "what" "monitoring.prometheusRule.enabled=true" "install" "the Prometheus operator" "off" "monitoring.prometheusRule.enabled=false") -}}
{{- end -}}
{{- end -}}
