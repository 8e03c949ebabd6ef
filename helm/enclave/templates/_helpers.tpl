{{/* Names */}}
{{- define "enclave.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "enclave.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "enclave.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "enclave.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "enclave.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Labels: selectorLabels takes (dict "root" $ "component" "api") */}}
{{- define "enclave.selectorLabels" -}}
app.kubernetes.io/name: {{ include "enclave.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "enclave.labels" -}}
{{ include "enclave.selectorLabels" . }}
app.kubernetes.io/part-of: enclave
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Pods of the chart that hold data or credentials: the API and the ingest workers. */}}
{{- define "enclave.peer" -}}
- podSelector:
    matchLabels:
      {{- include "enclave.selectorLabels" (dict "root" .root "component" .component) | nindent 6 }}
{{- end -}}

{{- define "enclave.qdrantSelector" -}}
app.kubernetes.io/name: qdrant
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "enclave.postgresqlSelector" -}}
app.kubernetes.io/name: postgresql
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Settings shared by the API and the workers: a ConfigMap plus the existing Secret. */}}
{{- define "enclave.envFrom" -}}
- configMapRef:
    name: {{ include "enclave.fullname" . }}
- secretRef:
    name: {{ required "existingSecret: name a Secret with the ENCLAVE_* credentials (see values.yaml)" .Values.existingSecret }}
{{- end -}}

{{- define "enclave.env" -}}
{{- if .Values.postgresql.enabled }}
- name: ENCLAVE_POSTGRES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "postgresql.auth.existingSecret is required" .Values.postgresql.auth.existingSecret }}
      key: password
- name: ENCLAVE_DATABASE_URL
  value: {{ printf "postgresql://%s:$(ENCLAVE_POSTGRES_PASSWORD)@%s-postgresql:5432/%s" .Values.postgresql.auth.username .Release.Name .Values.postgresql.auth.database | quote }}
{{- end }}
{{- end -}}

{{- define "enclave.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .tmpSizeLimit }}
- name: data
{{- if .root.Values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ default (printf "%s-data" (include "enclave.fullname" .root)) .root.Values.persistence.existingClaim }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end -}}

{{- define "enclave.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: {{ .Values.persistence.mountPath }}
{{- end -}}

{{- define "enclave.podSpecCommon" -}}
serviceAccountName: {{ include "enclave.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
