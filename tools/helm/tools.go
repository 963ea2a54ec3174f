//go:build tools

// Package helm pins Helm, which Debian does not package, for `make chart`
// and the chart's tests (deploy/helm). It is a module of its own so that
// Helm's Kubernetes dependencies never meet the exporter's or tools/go.mod's.
package helm

import _ "helm.sh/helm/v4/cmd/helm"
