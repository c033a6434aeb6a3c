{{/* Names, labels and the operator's RBAC rules, shared by the templates. */}}

{{/* Chart name, truncated to a DNS label. */}}
{{- define "eddy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Base of every resource name: fullnameOverride, else the release name when it contains the
chart name, else "<release>-<chart>". */}}
{{- define "eddy.fullname" -}}
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

{{/* The operator's objects: Deployment, Service, (Cluster)Role(Binding)s. */}}
{{- define "eddy.operatorName" -}}
{{- printf "%s-operator" (include "eddy.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "eddy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object, without app.kubernetes.io/component. */}}
{{- define "eddy.baseLabels" -}}
helm.sh/chart: {{ include "eddy.chart" . }}
app.kubernetes.io/name: {{ include "eddy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: eddy
{{- end -}}

{{/* Labels of the operator's objects (everything but the worker ServiceAccounts). */}}
{{- define "eddy.labels" -}}
{{ include "eddy.baseLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels that select the operator pods (never change them in an upgrade: Deployment selectors
are immutable). */}}
{{- define "eddy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eddy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "eddy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eddy.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "eddy.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "eddy.workerImage" -}}
{{- default (printf "eddy-worker:%s" .Chart.AppVersion) .Values.worker.image -}}
{{- end -}}

{{- define "eddy.leaseName" -}}
{{- default (include "eddy.operatorName" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* Namespaces that get a worker ServiceAccount: the watched ones, else the release's. */}}
{{- define "eddy.workerNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- join "," .Values.watchNamespaces -}}
{{- else -}}
{{- .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret with the S3 credentials ("" when none is configured). */}}
{{- define "eddy.s3SecretName" -}}
{{- if .Values.s3.credentials.create -}}
{{- printf "%s-s3" (include "eddy.fullname" .) -}}
{{- else -}}
{{- .Values.s3.credentials.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* What the operator does through the API in a watched namespace (all of them for the
ClusterRole). Exactly the operator's contract; docs/operations.md#rbac lists why each is needed.
Leases are not here: they get their own Role in the release namespace. */}}
{{- define "eddy.operatorRules" -}}
- apiGroups: ["eddy.dev"]
  resources: ["flinkjobs"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["eddy.dev"]
  resources: ["flinkjobs/status"]
  verbs: ["get", "patch"]
- apiGroups: ["eddy.dev"]
  resources: ["flinkjobs/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch", "create", "delete", "deletecollection"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{/* Checks of value combinations that the schema cannot express; included by the Deployment. */}}
{{- define "eddy.validate" -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicas is %d but leaderElection.enabled is false: more than one operator replica needs leader election (--set leaderElection.enabled=true), otherwise every replica would reconcile the same FlinkJobs" (int .Values.replicas)) -}}
{{- end -}}
{{- with .Values.s3.credentials -}}
{{- if and .create .existingSecret -}}
{{- fail "s3.credentials: set either create=true (with accessKeyId and secretAccessKey) or existingSecret, not both" -}}
{{- end -}}
{{- if and .create (or (not .accessKeyId) (not .secretAccessKey)) -}}
{{- fail "s3.credentials.create=true needs both s3.credentials.accessKeyId and s3.credentials.secretAccessKey" -}}
{{- end -}}
{{- end -}}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) -}}
{{- fail "serviceAccount.create=false needs serviceAccount.name (an existing ServiceAccount in the release namespace)" -}}
{{- end -}}
{{- end -}}
