# skuflow's front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO       ?= go
BIN      := bin
CMDS     := $(patsubst cmd/%/main.go,%,$(wildcard cmd/*/main.go))
STACK    := deploy/stack.sh
# Where `make demo` and `make up` find the local stack.
export SKUFLOW_BIN := $(CURDIR)/$(BIN)

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## install what is missing: Go modules, ClickHouse, kcat, zstd, chromium, prometheus, docker-compose, zookeeper (Debian packages), DuckDB (npm)
	@command -v $(GO) >/dev/null || { echo "Go is needed: https://go.dev/doc/install"; exit 1; }
	$(GO) mod download
	$(STACK) install

.PHONY: build
build: ## build the commands into bin/
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ $(addprefix ./cmd/,$(CMDS))

.PHONY: up
up: deps build ## start the local stack (ClickHouse, broker) in the background
	$(STACK) up

.PHONY: up-cluster
up-cluster: deps build ## the local stack on a ClickHouse cluster: ZooKeeper, 2 shards x 2 replicas (19000-19003)
	$(STACK) up-cluster

.PHONY: down
down: ## stop the local stack (by pid)
	$(STACK) down

.PHONY: status
status: ## show which services of the local stack run
	$(STACK) status

.PHONY: demo
demo: up ## start the stack, push a sample file, show the result
	@deploy/demo.sh

.PHONY: test
test: deps build ## vet, then unit, integration and end-to-end tests against real services
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

.PHONY: fuzz
fuzz: ## run every fuzz test for FUZZTIME each (default 20s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} -fuzzminimizetime 3s -parallel 1 $$pkg || exit 1; \
	  done; \
	done

.PHONY: bench
bench: deps build ## Go benchmarks, the end-to-end table (bench/results.json; BENCH_BIG=1: 5M rows), the loader's memory
	$(GO) test -run '^$$' -bench . -benchmem ./...
	bench/run.sh
	bench/rss.sh

.PHONY: bench-scale
bench-scale: deps build ## 1, 2, 4 processors and aggregators in one group on a 12-partition topic (bench/scale.json; docs/scaling.md)
	bench/scale.sh

.PHONY: clean
clean: down ## stop the stack and remove bin/ and .data/
	rm -rf $(BIN) .data
