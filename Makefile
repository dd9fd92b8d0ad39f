# hutch: `make run` starts the daemon with embedded defaults; `make test` runs every test.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(HOME)/go/bin:$(PATH)

BIN   ?= $(CURDIR)/bin
CACHE ?= /var/cache/hutch
DATA  ?= /var/lib/hutch
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build web deps image run test bench lint generate clean

all: build

deps:
	@./scripts/deps.sh

# The agent runs inside sandboxes of any image, so everything is built static.
# The browser terminal (web/terminal) is bundled first and embedded.
build: web
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $(BIN)/ ./cmd/...

WEB := web/terminal
web: $(WEB)/dist/terminal.js

$(WEB)/dist/terminal.js: $(WEB)/package.json $(WEB)/package-lock.json $(WEB)/tsconfig.json $(wildcard $(WEB)/src/*.ts)
	@command -v npm >/dev/null || ./scripts/deps.sh
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

# The default image is built once from internal/image/default.recipe and cached in $(CACHE).
image: deps build
	$(BIN)/hutch image build --cache $(CACHE)

run: image
	$(BIN)/hutch serve --data $(DATA) --cache $(CACHE)

test: image
	HUTCH_BIN=$(BIN) HUTCH_CACHE=$(CACHE) go test -race -count=1 -timeout 20m ./...

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

# Regenerates the protobuf and Connect code in api/ (committed).
generate:
	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	go install connectrpc.com/connect/cmd/protoc-gen-connect-go@v1.21.1
	command -v protoc >/dev/null || (apt-get update -qq && apt-get install -y -qq protobuf-compiler)
	protoc -I api --go_out=api --go_opt=paths=source_relative \
		--connect-go_out=api --connect-go_opt=paths=source_relative api/hutch/v1/hutch.proto api/hutch/v1/terminal.proto api/hutch/v1/egress.proto api/hutch/v1/code.proto api/hutch/v1/snapshot.proto

clean:
	rm -rf $(BIN) $(WEB)/node_modules $(WEB)/dist/terminal.*
