{{/* The vLLM pod, shared by the KServe InferenceService and the plain Deployment. */}}

{{- define "zp.kvTransferConfig" -}}
{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_both"}
{{- end -}}

{{- define "zp.vllmArgs" -}}
- --model={{ .Values.model.served }}
- --served-model-name={{ include "zp.servedModelName" . }}
- --host=0.0.0.0
- --port={{ .Values.runtime.port }}
- --tensor-parallel-size={{ .Values.model.tensorParallelSize }}
- --gpu-memory-utilization={{ .Values.model.gpuMemoryUtilization }}
{{- if .Values.model.enablePrefixCaching }}
- --enable-prefix-caching
{{- else }}
- --no-enable-prefix-caching
{{- end }}
{{- if gt (int .Values.model.maxModelLen) 0 }}
- --max-model-len={{ .Values.model.maxModelLen }}
{{- end }}
{{- if .Values.lmcache.enabled }}
- {{ printf "--kv-transfer-config=%s" (include "zp.kvTransferConfig" .) | squote }}
{{- end }}
{{- range .Values.model.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{- define "zp.vllmResources" -}}
{{- $res := deepCopy (default dict .Values.runtime.resources) -}}
{{- $gpus := toString .Values.runtime.gpusPerReplica -}}
{{- $_ := set $res "requests" (merge (dict "nvidia.com/gpu" $gpus) (default dict $res.requests)) -}}
{{- $_ := set $res "limits" (merge (dict "nvidia.com/gpu" $gpus) (default dict $res.limits)) -}}
{{- toYaml $res -}}
{{- end -}}

{{- define "zp.vllmContainer" -}}
- name: kserve-container
  image: {{ include "zp.runtimeImage" . }}
  imagePullPolicy: {{ .Values.runtime.image.pullPolicy }}
  {{- if and .Values.lmcache.enabled (eq .Values.lmcache.backend "mooncake") }}
  # Mooncake needs this pod's address in local_hostname: fill it in before starting vLLM.
  command:
    - /bin/sh
    - -c
    - sed "s/@POD_IP@/${POD_IP}/" /etc/lmcache/lmcache.yaml > /tmp/lmcache.yaml && exec python3 -m vllm.entrypoints.openai.api_server "$@"
    - vllm
  {{- else }}
  command: ["python3", "-m", "vllm.entrypoints.openai.api_server"]
  {{- end }}
  args:
    {{- include "zp.vllmArgs" . | nindent 4 }}
  ports:
    - name: {{ include "zp.vllmPortName" . }}
      containerPort: {{ .Values.runtime.port }}
      protocol: TCP
  env:
    - name: HOME
      value: /tmp
    - name: HF_HOME
      value: /models-cache/huggingface
    - name: VLLM_CONFIG_ROOT
      value: /tmp/vllm
    - name: VLLM_WORKER_MULTIPROC_METHOD
      value: spawn
    {{- if and .Values.lmcache.enabled (eq .Values.lmcache.backend "mooncake") }}
    # Mooncake's local_hostname (in Knative mode this needs kubernetes.podspec-fieldref).
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    {{- end }}
    {{- if .Values.model.hfTokenSecret.name }}
    - name: HF_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ .Values.model.hfTokenSecret.name }}
          key: {{ .Values.model.hfTokenSecret.key }}
    {{- end }}
    {{- if .Values.lmcache.enabled }}
    - name: LMCACHE_CONFIG_FILE
      value: {{ if eq .Values.lmcache.backend "mooncake" }}/tmp/lmcache.yaml{{ else }}/etc/lmcache/lmcache.yaml{{ end }}
    - name: LMCACHE_USE_EXPERIMENTAL
      value: "True"
    - name: LMCACHE_LOG_LEVEL
      value: {{ .Values.lmcache.logLevel | quote }}
    - name: PYTHONHASHSEED
      value: {{ .Values.lmcache.pythonHashSeed | quote }}
    - name: PROMETHEUS_MULTIPROC_DIR
      value: /tmp/lmcache_prometheus
    {{- if eq .Values.lmcache.backend "s3" }}
    - name: AWS_DEFAULT_REGION
      value: {{ .Values.lmcache.s3.region | quote }}
    {{- end }}
    {{- end }}
    {{- with .Values.runtime.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if and .Values.lmcache.enabled (eq .Values.lmcache.backend "s3") .Values.lmcache.s3.credentialsSecret }}
  envFrom:
    - secretRef:
        name: {{ .Values.lmcache.s3.credentialsSecret }}
  {{- end }}
  resources:
    {{- include "zp.vllmResources" . | nindent 4 }}
  startupProbe:
    httpGet:
      path: /health
      port: {{ include "zp.probePort" . }}
    periodSeconds: {{ .Values.runtime.probes.startup.periodSeconds }}
    failureThreshold: {{ .Values.runtime.probes.startup.failureThreshold }}
  readinessProbe:
    httpGet:
      path: /v1/models
      port: {{ include "zp.probePort" . }}
    periodSeconds: {{ .Values.runtime.probes.readiness.periodSeconds }}
    failureThreshold: {{ .Values.runtime.probes.readiness.failureThreshold }}
  livenessProbe:
    httpGet:
      path: /health
      port: {{ include "zp.probePort" . }}
    periodSeconds: {{ .Values.runtime.probes.liveness.periodSeconds }}
    failureThreshold: {{ .Values.runtime.probes.liveness.failureThreshold }}
  securityContext:
    # vLLM, Triton and torch.compile write caches at run time (HOME=/tmp); the root filesystem
    # stays writable for them, everything else is locked down.
    {{- /* Knative refuses a pod securityContext unless kubernetes.podspec-securitycontext is on:
    there the user and group are set on the container instead. */}}
    {{- include "zp.containerSecurity" (dict "readOnly" false "uid" (ternary 1000 0 (eq (include "zp.knative" .) "true"))) | nindent 4 }}
  volumeMounts:
    - name: dshm
      mountPath: /dev/shm
    - name: models-cache
      mountPath: /models-cache
    - name: tmp
      mountPath: /tmp
    {{- if .Values.lmcache.enabled }}
    - name: lmcache-config
      mountPath: /etc/lmcache
      readOnly: true
    {{- if eq .Values.lmcache.backend "nixl" }}
    - name: nixl-cache
      mountPath: {{ .Values.lmcache.nixl.path }}
    {{- end }}
    {{- end }}
{{- end -}}

{{- define "zp.vllmVolumes" -}}
- name: dshm
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.runtime.shmSize }}
- name: models-cache
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- if .Values.lmcache.enabled }}
- name: lmcache-config
  configMap:
    name: {{ include "zp.fullname" . }}-lmcache
{{- if eq .Values.lmcache.backend "nixl" }}
- name: nixl-cache
  emptyDir:
    sizeLimit: {{ .Values.lmcache.nixl.volumeSize }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "zp.vllmNodeSelector" -}}
{{- $sel := deepCopy (default dict .Values.runtime.nodeSelector) -}}
{{- if .Values.runtime.gpuProduct -}}
{{- $_ := set $sel "nvidia.com/gpu.product" .Values.runtime.gpuProduct -}}
{{- end -}}
{{- if $sel -}}
{{- toYaml $sel -}}
{{- end -}}
{{- end -}}

{{/* Pod-level fields (PodSpec keys other than containers/volumes), shared by ISVC and Deployment. */}}
{{- define "zp.vllmPodFields" -}}
{{- with .Values.imagePullSecrets -}}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (include "zp.vllmNodeSelector" .) }}
nodeSelector:
  {{- . | nindent 2 }}
{{- end }}
{{- with .Values.runtime.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.runtime.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if include "zp.knative" . }}
{{- /* Knative sets the grace period from the revision's timeout and refuses it here. */}}
automountServiceAccountToken: false
{{- else }}
terminationGracePeriodSeconds: {{ .Values.runtime.terminationGracePeriodSeconds }}
automountServiceAccountToken: false
securityContext:
  {{- include "zp.podSecurity" (dict "uid" 1000) | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Labels on the vLLM pods (and the InferenceService, which KServe copies to them). */}}
{{- define "zp.vllmLabels" -}}
{{ include "zp.labels" . }}
app.kubernetes.io/component: model
{{ include "zp.modelSelector" . }}
{{- if .Values.aibrix.gateway.enabled }}
model.aibrix.ai/name: {{ include "zp.servedModelName" . }}
model.aibrix.ai/port: {{ include "zp.servingPort" . | quote }}
model.aibrix.ai/engine: vllm
{{- end }}
{{- with .Values.runtime.podLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
