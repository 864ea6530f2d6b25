{{/* Chart name, possibly overridden. */}}
{{- define "flowtel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name (63 characters at most: a DNS label). */}}
{{- define "flowtel.fullname" -}}
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

{{/* The collector gateway's name. */}}
{{- define "flowtel.collectorName" -}}
{{- printf "%s-collector" (include "flowtel.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "flowtel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "flowtel.labels" -}}
helm.sh/chart: {{ include "flowtel.chart" . }}
app.kubernetes.io/name: {{ include "flowtel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: flowtel
{{- end }}

{{/* The agent's labels and selector. */}}
{{- define "flowtel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flowtel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end }}

{{/* The collector gateway's selector. */}}
{{- define "flowtel.collectorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "flowtel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: collector
{{- end }}

{{- define "flowtel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "flowtel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "flowtel.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Where the node's cgroup v2 root is mounted in the agent container. */}}
{{- define "flowtel.cgroupMountPath" -}}
/host/sys/fs/cgroup
{{- end }}

{{/* Where the OTLP TLS Secret is mounted. */}}
{{- define "flowtel.tlsMountPath" -}}
/etc/flowtel-tls
{{- end }}

{{/*
The OTLP endpoint the agents use: the chart's gateway when collector.enabled,
else config.exporters.otlp.endpoint ("" = no OTLP). Setting both is an error,
so a value is never silently ignored.
*/}}
{{- define "flowtel.otlpEndpoint" -}}
{{- $endpoint := .Values.config.exporters.otlp.endpoint | default "" }}
{{- if .Values.collector.enabled }}
{{- if $endpoint }}
{{- fail (printf "config.exporters.otlp.endpoint (%s) and collector.enabled=true: set one of them. With the collector on, the agents send to the chart's gateway." $endpoint) }}
{{- end }}
{{- printf "http://%s.%s.svc:4317" (include "flowtel.collectorName" .) .Release.Namespace }}
{{- else }}
{{- $endpoint }}
{{- end }}
{{- end }}

{{/*
The agent's config file: the values under `config`, plus what the chart owns
(the cgroup root it mounts, the OTLP endpoint, health enabled for the probes).
Only keys of the agent's config schema (src/config/config.ts) are rendered;
values.schema.json rejects any other.
*/}}
{{- define "flowtel.agentConfig" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $_ := set $cfg "cgroupRoot" (include "flowtel.cgroupMountPath" .) }}
{{- $endpoint := include "flowtel.otlpEndpoint" . }}
{{- if $endpoint }}
{{- $_ := set $cfg.exporters.otlp "endpoint" $endpoint }}
{{- else }}
{{- $_ := unset $cfg.exporters.otlp "endpoint" }}
{{- end }}
{{- $_ := set $cfg.health "enabled" true }}
{{- toYaml $cfg }}
{{- end }}
