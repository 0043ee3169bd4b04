GO ?= go
BIN := bin/apiv4

.PHONY: build run test generate check-generate vet chaos

build:
	$(GO) build -o $(BIN) ./cmd/apiv4

run: build
	./$(BIN) serve

generate:
	$(GO) generate ./gen/...

# check-generate fails when gen/ differs from what openapi.yaml generates.
check-generate: generate
	@git diff --exit-code -- gen || (echo "gen/ is stale: run make generate and commit" && exit 1)

vet:
	$(GO) vet ./...

# test runs every package; the conformance suite's coverage table is
# printed at the end.
test: vet
	@mkdir -p bin && rm -f bin/coverage.txt
	APIV4_COVERAGE_OUT=$(CURDIR)/bin/coverage.txt $(GO) test -race -count=1 -timeout 15m ./...
	@cat bin/coverage.txt 2>/dev/null || true

# chaos runs three servers on a PostgreSQL of its own under load, kills
# them at random and restarts PostgreSQL, then checks every promise of
# docs/invariants.md. make chaos DURATION=2m for a shorter run.
DURATION ?= 10m
chaos: build
	$(GO) run ./cmd/chaos -apiv4 $(BIN) -duration $(DURATION)
