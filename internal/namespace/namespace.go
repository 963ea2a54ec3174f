// Package namespace holds the prefix of every metric the exporter and the
// remediation receiver expose. It imports nothing of the project, so that any
// package may name a metric without reaching into another's layer.
package namespace

// Namespace prefixes every metric (IAP itself owns the bare iap_ prefix).
const Namespace = "iap_ha"
