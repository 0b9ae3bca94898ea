package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// A push names a type the configuration has, and --topic only for
// products: both are refused before anything is reached.
func TestPushTypeUsage(t *testing.T) {
	example, err := filepath.Abs("../../skuflow.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "orders"}, `--type: no record type "orders": the types are [products events plays]`},
		{[]string{"--type", "events", "--topic", "x"}, `--topic names products' topic; type events's is "events"`},
	} {
		var out, stderr bytes.Buffer
		args := append([]string{"--config", example, "--brokers", "127.0.0.1:1"}, c.args...)
		err := runPush(context.Background(), append(args, "f.json"), stdio{out: &out, err: &stderr})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("push %v: %v, want a usage error with %q", c.args, err, c.want)
		}
	}
}
