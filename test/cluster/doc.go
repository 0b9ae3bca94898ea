// Package cluster holds the end-to-end tests of skuflow on a replicated,
// sharded ClickHouse cluster (internal/testenv.NewClusterStack).
package cluster
