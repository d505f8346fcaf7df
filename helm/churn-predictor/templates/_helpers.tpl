{{/*
Chart name, truncated because some Kubernetes name fields are limited to 63 characters.
*/}}
{{- define "churn-predictor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name = the stable InferenceService's name. Capped at 35 characters: KServe appends
"-predictor" (Service and Deployment names) and the candidate adds "-candidate"; every derived
name must stay a DNS label.
*/}}
{{- define "churn-predictor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 35 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 35 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 35 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "churn-predictor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels shared by every object of this release.
*/}}
{{- define "churn-predictor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "churn-predictor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "churn-predictor.labels" -}}
helm.sh/chart: {{ include "churn-predictor.chart" . }}
{{ include "churn-predictor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: churn-serving
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Label that names the traffic arm (stable or candidate) on an InferenceService; KServe copies it to
the Deployments, Services and pods it creates, so monitors, alerts and budgets can tell arms apart.
*/}}
{{- define "churn-predictor.armLabel" -}}churn-predictor/arm{{- end }}

{{/*
The arms to deploy, each {name, isvc, bundleUri}: the stable InferenceService and, with a canary,
the candidate as an InferenceService of its own.
*/}}
{{- define "churn-predictor.arms" -}}
{{- $full := include "churn-predictor.fullname" . }}
{{- $arms := list (dict "name" "stable" "isvc" $full "bundleUri" (include "churn-predictor.stableBundleUri" .)) }}
{{- if .Values.canary.enabled }}
{{- $arms = append $arms (dict "name" "candidate" "isvc" (printf "%s-candidate" $full) "bundleUri" (include "churn-predictor.canaryBundleUri" .)) }}
{{- end }}
{{- toJson $arms }}
{{- end }}

{{- define "churn-predictor.stableBundleUri" -}}
{{- required "stable.bundleUri is required: the versioned bundle prefix, e.g. s3://models/churn/<version>" .Values.stable.bundleUri | trimSuffix "/" }}
{{- end }}

{{- define "churn-predictor.canaryBundleUri" -}}
{{- required "canary.bundleUri is required when canary.enabled is true" .Values.canary.bundleUri | trimSuffix "/" }}
{{- end }}

{{- define "churn-predictor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "churn-predictor.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "churn-predictor.s3SecretName" -}}
{{- default (printf "%s-s3" (include "churn-predictor.fullname" .)) .Values.s3.existingSecret }}
{{- end }}

{{- define "churn-predictor.tokensSecretName" -}}
{{- default (printf "%s-tokens" (include "churn-predictor.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{- define "churn-predictor.transformerImage" -}}
{{- printf "%s:%s" .Values.transformer.image.repository (default .Chart.AppVersion .Values.transformer.image.tag) }}
{{- end }}

{{/*
Namespace for monitoring objects that may live next to Prometheus or Grafana.
*/}}
{{- define "churn-predictor.namespaceOr" -}}
{{- default .root.Release.Namespace .namespace }}
{{- end }}

{{/*
Selector of the arms' predictor pods, and of KServe's Services in front of them, in this release.
*/}}
{{- define "churn-predictor.armPodSelector" -}}
{{ include "churn-predictor.selectorLabels" . }}
component: predictor
{{- end }}

{{/*
Pod-level fields of an arm's predictor pod (the runtime and the transformer).
*/}}
{{- define "churn-predictor.podFields" -}}
{{- $pod := .Values.predictor -}}
serviceAccountName: {{ include "churn-predictor.serviceAccountName" . }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with $pod.podLabels }}
labels:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pod.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pod.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pod.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pod.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $pod.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  - name: tokens
    secret:
      secretName: {{ include "churn-predictor.tokensSecretName" . }}
      defaultMode: 0440
      items:
        - key: {{ .Values.auth.secretKey }}
          path: {{ .Values.auth.secretKey }}
{{- end }}

{{/*
Where KServe's storage initializer puts the downloaded bundle, in both containers (read-only).
*/}}
{{- define "churn-predictor.modelMount" -}}/mnt/models{{- end }}
