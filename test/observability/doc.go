// Package observability holds the checks of what operators read skuflow
// with: the Prometheus configuration and alert rules in deploy/prometheus,
// the Grafana dashboard in deploy/grafana, and docs/operations.md. Its
// tests run the real services and a real Prometheus, and hold every query
// of the dashboard and the alerts to the metrics the services export.
//
// `go test ./test/observability -run TestMetricsEndToEnd -update-picture`
// also draws the dashboard from the run's data into
// docs/operations-dashboard.png.
package observability
