GO ?= go
BIN := bin/apiv4

.PHONY: build run test generate check-generate vet bench

build:
	$(GO) build -o $(BIN) ./cmd/apiv4

run: build
	./$(BIN) serve

# bench seeds a PostgreSQL database (127.0.0.1:5432 as postgres unless
# APIV4_BENCH_DATABASE_URL says otherwise), measures the server against the
# database's ceiling and prints the table; BENCHFLAGS="-events 10000000"
# for the large run.
bench: build
	./$(BIN) bench $(BENCHFLAGS)

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
