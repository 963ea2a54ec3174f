{{- define "iap-ha-exporter.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "iap-ha-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "iap-ha-exporter.labels" -}}
{{ include "iap-ha-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "iap-ha-exporter.configMapName" -}}
{{- .Values.existingConfigMap | default (include "iap-ha-exporter.fullname" .) -}}
{{- end -}}

{{- define "iap-ha-exporter.claimName" -}}
{{- .Values.remediation.persistence.existingClaim | default (printf "%s-remediation" (include "iap-ha-exporter.fullname" .)) -}}
{{- end -}}
