//go:build tools

// Package tools pins the versions of the development tools the Makefile
// runs (go run from this module), apart from the exporter's own go.mod.
package tools

import (
	_ "github.com/google/go-jsonnet/cmd/jsonnet"
	_ "github.com/goreleaser/nfpm/v2/cmd/nfpm"
	_ "github.com/prometheus/prometheus/cmd/promtool"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
