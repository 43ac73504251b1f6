{{/* The operator's pod spec: the registration Job and the heartbeat Deployment differ only in
--cluster-id and restart policy. */}}
{{- define "zp.operatorPod" -}}
serviceAccountName: {{ include "zp.operatorName" .ctx }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .ctx.Values.operator.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .ctx.Values.operator.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
restartPolicy: {{ .restartPolicy }}
securityContext:
  {{- include "zp.podSecurity" (dict "uid" 65532) | nindent 2 }}
containers:
  - name: operator
    image: {{ include "zp.image" .ctx }}
    imagePullPolicy: {{ .ctx.Values.image.pullPolicy }}
    args:
      - operator
      - --control-plane={{ .ctx.Values.operator.controlPlane.url }}
      - --api-key-file=/var/run/secrets/zumik/api-key
      - --namespace={{ .ctx.Release.Namespace }}
      - --release={{ .ctx.Release.Name }}
      {{- if .ctx.Values.operator.clusterId }}
      - --cluster-id={{ .ctx.Values.operator.clusterId }}
      {{- else }}
      # The registration hook Job: register, store the id, send one heartbeat, exit.
      - --once
      {{- end }}
    env:
      - name: ZUMIK_HEARTBEAT_INTERVAL
        value: {{ .ctx.Values.operator.schedule | quote }}
      - name: ZUMIK_PROFILE_HEADER
        value: {{ .ctx.Values.profileHeader | quote }}
    resources:
      {{- toYaml .ctx.Values.operator.resources | nindent 6 }}
    securityContext:
      {{- include "zp.containerSecurity" (dict "readOnly" true) | nindent 6 }}
    volumeMounts:
      - name: api-key
        mountPath: /var/run/secrets/zumik
        readOnly: true
      - name: tmp
        mountPath: /tmp
volumes:
  - name: api-key
    secret:
      secretName: {{ .ctx.Values.operator.controlPlane.secretName }}
      items:
        - key: {{ .ctx.Values.operator.controlPlane.secretKey }}
          path: api-key
  - name: tmp
    emptyDir: {}
{{- end -}}
