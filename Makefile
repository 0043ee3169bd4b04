GO ?= go
BIN := bin/apiv4

.PHONY: build run test generate check-generate vet

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

test: vet
	$(GO) test -race -count=1 -timeout 15m ./...
