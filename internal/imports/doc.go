// Package imports holds no code: its test keeps the project's import graph
// running one way (see layers in imports_test.go). The metrics, the topology
// page and the remediation receiver all read the model's Observation; only
// the HTTP side and the binary reach the collectors; no production package
// uses the test fixtures.
package imports
