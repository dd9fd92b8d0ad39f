# hutch: `make run` starts the daemon with embedded defaults; `make test` runs every test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

BIN   ?= $(CURDIR)/bin
CACHE ?= /var/cache/hutch
DATA  ?= /var/lib/hutch
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build web sdk-ts deps image run test test-ts test-py bench lint generate clean

all: build

deps:
	@./scripts/deps.sh

# The agent runs inside sandboxes of any image, so everything is built static.
# The browser terminal (web/terminal) is bundled first and embedded.
build: web
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $(BIN)/ ./cmd/...

WEB := web/terminal
SDK := sdk/typescript
web: $(WEB)/dist/terminal.js

# The page imports its xterm addon from the TypeScript SDK (@hutch-sh/sdk/xterm).
$(WEB)/dist/terminal.js: $(WEB)/package.json $(WEB)/package-lock.json $(WEB)/tsconfig.json $(wildcard $(WEB)/src/*.ts) $(SDK)/dist/index.js
	@command -v npm >/dev/null || ./scripts/deps.sh
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

# The TypeScript SDK, @hutch-sh/sdk: compiled to $(SDK)/dist.
sdk-ts: $(SDK)/dist/index.js

$(SDK)/dist/index.js: $(SDK)/package.json $(SDK)/package-lock.json $(SDK)/tsconfig.json $(wildcard $(SDK)/src/*.ts $(SDK)/src/gen/hutch/v1/*.ts)
	@command -v npm >/dev/null || ./scripts/deps.sh
	cd $(SDK) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

# The default image is built once from internal/image/default.recipe and cached in $(CACHE).
image: deps build
	$(BIN)/hutch image build --cache $(CACHE)

run: image
	$(BIN)/hutch serve --data $(DATA) --cache $(CACHE)

test: image test-ts
	HUTCH_BIN=$(BIN) HUTCH_CACHE=$(CACHE) go test -race -count=1 -timeout 20m ./...
	$(MAKE) test-py

# The Python SDK (sdk/python) against a daemon its tests start from $(BIN);
# Debian's python3 with python3-httpx and python3-pytest (installed if missing).
test-py: build
	@/usr/bin/python3 -c 'import httpx, pytest' 2>/dev/null || ./scripts/deps.sh
	HUTCH_BIN=$(BIN) HUTCH_CACHE=$(CACHE) /usr/bin/python3 -m pytest -q -p no:cacheprovider sdk/python/tests

# The TypeScript SDK against a daemon of its own (node --test).
test-ts: image sdk-ts
	cd $(SDK) && HUTCH_BIN=$(BIN) HUTCH_CACHE=$(CACHE) npm test

# The MCP server alone (make test runs these too): its unit tests, then the
# Go and the official TypeScript MCP clients over stdio and /mcp.
.PHONY: test-mcp
test-mcp: build
	go test -race -count=1 ./internal/mcp/
	HUTCH_BIN=$(BIN) HUTCH_CACHE=$(CACHE) go test -race -count=1 -timeout 10m -run '^TestMCP' ./test/e2e/

bench: image
	HUTCH_BIN=$(BIN) HUTCH_CACHE=$(CACHE) go run ./bench

lint:
	go vet ./...
	go run $(STATICCHECK) ./...

# Regenerates the protobuf and Connect code in api/ and $(SDK)/src/gen (committed).
generate:
	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
	command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	protoc -I api --go_out=api --go_opt=paths=source_relative \
		--connect-go_out=api --connect-go_opt=paths=source_relative api/hutch/v1/hutch.proto api/hutch/v1/terminal.proto api/hutch/v1/egress.proto api/hutch/v1/code.proto api/hutch/v1/snapshot.proto api/hutch/v1/image.proto
	cd $(SDK) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent generate
	/usr/bin/python3 sdk/python/scripts/unasync.py

clean:
	rm -rf $(BIN) $(WEB)/node_modules $(WEB)/dist/terminal.* $(SDK)/node_modules $(SDK)/dist
