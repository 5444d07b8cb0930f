# Parley's checks. `make test` is the one command that runs everything;
# .ci/run calls it with CI=true, where suites needing PostgreSQL, NATS or
# Node fail instead of skipping.

GO ?= go

.PHONY: test check vet fmt unit npm tools run bench-idle

# versitygw is the S3 server the media tests store files in.
VERSITYGW_VERSION = v1.8.0

test: check npm tools
	$(GO) test -race -count=1 -timeout 14m ./...

tools:
	@if ! command -v versitygw >/dev/null 2>&1 && [ ! -x "$$($(GO) env GOPATH)/bin/versitygw" ]; then \
		echo "installing versitygw $(VERSITYGW_VERSION) (the S3 server of the media tests)"; \
		$(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION); \
	fi

check: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# The JavaScript tools of the tests: socket.io-client for the interop
# suites, @redocly/cli and @asyncapi/parser for the OpenAPI and AsyncAPI
# checks (TestDocumentsLint); in web/, typescript (the client's type check),
# playwright-core and axe-core (its browser suite, on Debian's Chromium:
# no browser is ever downloaded). Without npm those suites skip; with
# CI=true a missing npm fails here.
npm:
	@if command -v npm >/dev/null 2>&1; then \
		if [ ! -d e2e/js/node_modules ] || [ e2e/js/package-lock.json -nt e2e/js/node_modules ]; then \
			npm ci --prefix e2e/js --no-audit --no-fund --loglevel=error && touch e2e/js/node_modules; \
		fi; \
		if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then \
			PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix web --no-audit --no-fund --loglevel=error && touch web/node_modules; \
		fi; \
	elif [ "$$CI" = "true" ]; then echo "npm not found: CI needs Node for the interop and document checks"; exit 1; \
	else echo "npm not found: JavaScript interop suites and document lint will skip"; fi

run:
	$(GO) run ./cmd/parley
