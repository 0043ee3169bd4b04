GO ?= go
NPM ?= npm
BIN := bin/apiv4
NPX := npx --no-install
# Keep the npm tools quiet and offline about themselves.
export REDOCLY_TELEMETRY := off
export REDOCLY_SUPPRESS_UPDATE_NOTICE := true

.PHONY: build run test generate check-generate vet bench npm assets lint-spec ts-client ts-test \
	portal-test ci-npm chaos

# build makes the server and, beside it, the compiled conformance suite
# that apiv4 conformance runs. Run make assets first to embed the docs
# portal; without it /docs is the plain page.
build:
	$(GO) build -o $(BIN) ./cmd/apiv4
	$(GO) test -c -o bin/apiv4-conformance ./conformance

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
# printed at the end. It needs no npm: without make assets the portal
# test checks the plain page, and it skips without chromium.
test: vet
	@mkdir -p bin && rm -f bin/coverage.txt
	APIV4_COVERAGE_OUT=$(CURDIR)/bin/coverage.txt $(GO) test -race -count=1 -timeout 15m ./...
	@cat bin/coverage.txt 2>/dev/null || true

# npm installs the npm tools exactly as package-lock.json pins them.
npm: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	$(NPM) ci

# assets copies the docs portal's bundle into portal/assets, where the
# next go build embeds it.
assets: npm
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css \
		portal/assets/

# lint-spec lints openapi.yaml with the rules of redocly.yaml.
lint-spec: npm
	$(NPX) redocly lint openapi.yaml

# ts-client generates the TypeScript types from openapi.yaml and
# type-checks the client and its test.
ts-client: npm
	$(NPX) openapi-typescript openapi.yaml -o clients/typescript/src/schema.d.ts
	$(NPX) tsc -p clients/typescript

# ts-test runs the TypeScript client's test against a server of its own.
ts-test: ts-client build
	APIV4_BIN=$(CURDIR)/$(BIN) node --test clients/typescript/dist/test/

# portal-test renders the built portal in headless Chromium and requires
# it (and chromium) to be there.
portal-test: assets
	APIV4_REQUIRE_PORTAL=1 $(GO) test -count=1 -run TestDocsInBrowser -v ./portal/

# ci-npm is what CI runs beside make test: everything that needs npm.
ci-npm: lint-spec ts-test portal-test

# chaos runs three servers on a PostgreSQL of its own under load, kills
# them at random and restarts PostgreSQL, then checks every promise of
# docs/invariants.md. make chaos DURATION=2m for a shorter run.
DURATION ?= 10m
chaos: build
	./$(BIN) chaos --duration $(DURATION)
