{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "pieces-integration.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pieces-integration.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pieces-integration.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "pieces-integration.labels" -}}
helm.sh/chart: {{ include "pieces-integration.chart" . }}
{{ include "pieces-integration.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "pieces-integration.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pieces-integration.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pieces-integration.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pieces-integration.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pieces-integration.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret every credential comes from: it must exist, the chart never writes one. */}}
{{- define "pieces-integration.secretName" -}}
{{- required "existingSecret: name a Secret you created (see deploy/README.md); the chart holds no secret values" .Values.existingSecret }}
{{- end }}

{{/* Seconds the pod needs to stop: the readiness drain, the WebSocket close, in-flight requests. */}}
{{- define "pieces-integration.terminationGrace" -}}
{{- add (int (ceil .Values.drain.seconds)) (int .Values.drain.websocketCloseSeconds) (int .Values.drain.inFlightSeconds) (int .Values.drain.marginSeconds) }}
{{- end }}

{{/* Environment shared by the Deployment and the migration Job: secrets by reference only. */}}
{{- define "pieces-integration.env" -}}
- name: CONFIG_FILE
  value: /app/config/app.yaml
- name: PIECES_INTEGRATION_DATA_DIR
  value: /var/lib/pieces-integration
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- range $name, $ref := .Values.secretEnv }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "pieces-integration.secretName" $ }}
      key: {{ $ref.key }}
      optional: {{ $ref.optional | default false }}
{{- end }}
{{- end }}

{{- define "pieces-integration.volumes" -}}
- name: config
  configMap:
    name: {{ include "pieces-integration.fullname" . }}
- name: data
  emptyDir:
    sizeLimit: {{ .Values.volumes.dataSizeLimit }}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.volumes.tmpSizeLimit }}
{{- end }}

{{- define "pieces-integration.volumeMounts" -}}
- name: config
  mountPath: /app/config
  readOnly: true
- name: data
  mountPath: /var/lib/pieces-integration
- name: tmp
  mountPath: /tmp
{{- end }}
