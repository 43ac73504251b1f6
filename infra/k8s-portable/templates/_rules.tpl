{{/* Recording rules, shared by the PrometheusRule and the observability test (which loads the
rendered groups into a real Prometheus). */}}
{{- define "zp.ttftQuery" -}}
1000 * histogram_quantile({{ .Values.aibrix.autoscaler.ttftQuantile }}, sum by (le, namespace, pod) (rate(vllm:time_to_first_token_seconds_bucket[1m])))
{{- end -}}

{{- define "zp.recordingRules" -}}
- name: zumik-portable.autoscaling
  interval: 15s
  rules:
    # Per-pod TTFT quantile in milliseconds: the Pods custom metric AIBrix scales on (via
    # prometheus-adapter). AIBrix reads Quantity.Value(), an integer, hence milliseconds.
    - record: zumik:vllm_ttft_p90_ms
      expr: {{ include "zp.ttftQuery" . }}
- name: zumik-portable.serving
  interval: 30s
  rules:
    - record: cluster:vllm_ttft_seconds:p90_5m
      expr: histogram_quantile(0.9, sum by (cluster, model_name, le) (rate(vllm:time_to_first_token_seconds_bucket[5m])))
    - record: cluster:vllm_requests:rate5m
      expr: sum by (cluster, model_name) (rate(vllm:request_success_total[5m]))
    - record: cluster:vllm_prefix_cache_hit_ratio:5m
      expr: sum by (cluster) (rate(vllm:prefix_cache_hits_total[5m])) / clamp_min(sum by (cluster) (rate(vllm:prefix_cache_queries_total[5m])), 1)
    - record: cluster:lmcache_hit_ratio:5m
      expr: sum by (cluster) (rate(lmcache:num_hit_tokens_total[5m])) / clamp_min(sum by (cluster) (rate(lmcache:num_requested_tokens_total[5m])), 1)
    - record: cluster:dcgm_gpu_utilization:avg
      expr: avg by (cluster) (DCGM_FI_DEV_GPU_UTIL)
{{- end -}}
