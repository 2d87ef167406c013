{{/* The chart's name, or nameOverride. */}}
{{- define "trainfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release-qualified name of the operator's objects (at most 63 characters). */}}
{{- define "trainfleet.fullname" -}}
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

{{- define "trainfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels that select the operator's pods; never change them in an upgrade. */}}
{{- define "trainfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trainfleet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The selector labels as key=value,... for --operator-pod-labels: each job's NetworkPolicy admits only this release's operator pods. */}}
{{- define "trainfleet.operatorPodLabels" -}}
{{- $pairs := list -}}
{{- range $key, $value := (include "trainfleet.selectorLabels" . | fromYaml) -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end }}

{{/* The standard labels of every object of the chart. */}}
{{- define "trainfleet.labels" -}}
helm.sh/chart: {{ include "trainfleet.chart" . }}
{{ include "trainfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: trainfleet
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "trainfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "trainfleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "trainfleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The operator's RBAC rules: files/operator-permissions.json (a byte-identical copy of
k8s/operator-permissions.json, the one list of the API calls the operator makes), plus the
PodGroup rules of each gang scheduler named in gangScheduling.podGroups.
*/}}
{{- define "trainfleet.rules" -}}
{{- $permissions := .Files.Get "files/operator-permissions.json" | fromJson }}
{{- if not $permissions.rules }}
{{- fail "files/operator-permissions.json is missing or has no rules" }}
{{- end }}
{{- $rules := $permissions.rules }}
{{- range .Values.gangScheduling.podGroups }}
{{- $rules = concat $rules (get $permissions.gangScheduling .) }}
{{- end }}
{{- toYaml $rules }}
{{- end }}
