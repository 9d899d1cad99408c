# otpbot: build, test, lint, bench.
#
#   make build        bin/otpbot, static (no cgo), version stamped
#   make test         the whole test suite (needs Redis on 127.0.0.1:6379)
#   make lint         gofmt, go vet, staticcheck; govulncheck when a database is given
#   make bench        benchmarks
#   make docker       the container image (needs a container engine)
#   make bot-api-schema  refresh the Bot API schema bot/bottest checks requests against (needs GitHub)
#
# Tools are pinned in go.mod (`tool` directives) and run with `go tool`, so
# lint works offline once the module cache is filled (`go mod download`).

GO      ?= go
BIN     ?= bin/otpbot
# The version shown by `otpbot version` and otpbot_build_info. Override with
# `make build VERSION=1.2.3`; outside a git checkout it is "dev".
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
IMAGE   ?= otpbot:$(VERSION)
BENCH   ?= .
BENCHTIME ?= 1s

# Go vulnerability database for govulncheck, e.g. https://vuln.go.dev or
# file:///srv/govulndb (a mirror laid out as vuln.go.dev serves it).
VULNDB  ?=

.PHONY: all build test lint fmt-check vet staticcheck vulncheck bench docker bot-api-schema clean

all: lint test build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/otpbot

test:
	$(GO) test -count=1 ./...

lint: fmt-check vet staticcheck vulncheck

# testdata is skipped: fixtures there may be malformed on purpose, and the Go tools ignore it.
fmt-check:
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Configuration: staticcheck.conf at the repository root.
staticcheck:
	$(GO) tool staticcheck ./...

# govulncheck needs the Go vulnerability database. This machine and CI reach
# only the Go module proxy and Debian's archive: vuln.go.dev is unreachable,
# the proxy refuses golang.org/x/vulndb (403, no version served) and Debian
# ships govulncheck without a database. So no database can be bundled, and
# `make lint` runs govulncheck only when VULNDB names one; otherwise it says
# it skipped, and never fails for lack of a database. Where the network allows:
#   make vulncheck VULNDB=https://vuln.go.dev
vulncheck:
ifeq ($(strip $(VULNDB)),)
	@echo "vulncheck: skipped: no Go vulnerability database reachable offline (set VULNDB=https://vuln.go.dev or file:///path/to/mirror)"
else
	$(GO) tool govulncheck -db $(VULNDB) ./...
endif

bench:
	$(GO) test -count=1 -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) ./...

docker:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

# The Telegram Bot API schema the fake Bot API (bot/bottest) checks every
# request against; see bot/bottest/testdata/README.md.
bot-api-schema:
	$(GO) generate ./bot/bottest

clean:
	rm -rf bin
