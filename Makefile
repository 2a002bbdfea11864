# wsnotify - see README.md. Tools the targets need are installed on first use
# into git-ignored folders (infra/node/node_modules, .tools/).

GO          ?= go
NODE_DIR    := infra/node
NODE_STAMP  := $(NODE_DIR)/node_modules/.installed
# The Node.js publisher is an npm package with dependencies of its own (the
# AWS SDK's SQS client, signer and credential providers): an ES module finds
# its imports only in node_modules beside it or above it, so they are
# installed there, not in infra/node.
PUBLISHER_DIR   := clients/publisher
PUBLISHER_STAMP := $(PUBLISHER_DIR)/node_modules/.installed
FUNCTIONS   := connect disconnect default jobevents publish s3upload fanout
LAMBDA_ARCH ?= arm64
BUILD_DIR   ?= build
GOBUILD     := CGO_ENABLED=0 $(GO) build -trimpath -tags lambda.norpc -ldflags='-s -w'
TOOLS_BIN   := $(CURDIR)/.tools/bin
# The Lambda Runtime Interface Emulator: serves the Invoke API in front of a
# bootstrap, so tests run each Lambda binary as a process.
RIE_VERSION := v0.0.0-20261030222936-bef5c4ba774d
RIE         := $(TOOLS_BIN)/aws-lambda-rie

.PHONY: run demo test build clean tools vet fuzz fuzz-short load bench sam-build smoke
.PHONY: build-ConnectFunction build-DisconnectFunction build-DefaultFunction build-JobEventsFunction build-PublishFunction build-S3UploadFunction build-FanoutFunction

## run: local mode on 127.0.0.1:8000 with the embedded store. The binary is
## built, then run by make itself: `go run` would turn Ctrl-C into exit
## status 1, and make would report that as an error.
run:
	$(GO) build -o build/local ./infra/local
	build/local

## demo: local mode with a simulated organization run; prints the live demo page's URL
## with a key. Built, then run by make, as for run: Ctrl-C ends it with status 0.
demo:
	$(GO) build -o build/demo ./infra/demo
	build/demo

## test: every test, with the tools it needs installed first, then each fuzz target briefly
## Four packages at a time on two cores: most of the long ones wait on the
## processes they start (dynalite, moto, the emulators, Node.js), so two at a
## time left the cores half idle (warm: 143 s of tests with -p 2, 108 s with -p 4).
## -vet=off: the vet target has just run every analyzer on every package;
## go test would run its subset again on each package it tests.
## -ldflags=-w: test binaries without DWARF, which nothing reads (stack traces
## and race reports come from the symbol table); linking some fifty race-enabled
## test binaries with it was a quarter of a warm run's CPU (245 -> 185-207 s).
## SLOW_TESTS, the packages whose tests take longest, are named first so that
## go test starts them first (it runs packages in the order they are named,
## four at a time): started last, the slowest one ran on alone at the end.
SLOW_TESTS := ./infra/local/server ./infra/template ./infra/local ./infra/smoke ./functions ./infra/emulator ./shared/store/dynamo ./clients/js ./clients/publisher
test: tools vet
	$(GO) test -race -count=1 -p 4 -vet=off -ldflags=-w $(SLOW_TESTS) ./...
	$(MAKE) --no-print-directory fuzz-short

## fuzz: each fuzz target for FUZZTIME (default 1m, or a count such as 500000x); crashers land in testdata/fuzz: keep them
FUZZTIME ?= 1m
fuzz:
	@for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v node_modules | xargs -n1 dirname | sort -u); do \
	  for target in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$dir $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$dir || exit 1; \
	  done; \
	done

## fuzz-short: each target for a fixed number of inputs, not a duration: Go 1.26's
## fuzz coordinator can fail a target with a spurious "context deadline exceeded"
## when a -fuzztime duration ends under load (fixed in Go 1.27); a count has no deadline.
## 10,000 inputs a target (50,000 took 45 s of a warm make test on 2 shared cores):
## what each run finds interesting joins the corpus in the Go cache, so the next run
## goes on from there; make fuzz searches for longer.
fuzz-short:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10000x

vet:
	@unformatted=$$(gofmt -l $$(find . -name '*.go' -not -path './infra/node/*' -not -path './.tools/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed on: $$unformatted"; exit 1; fi
	$(GO) vet ./...

tools: $(NODE_STAMP) $(PUBLISHER_STAMP) $(RIE)

$(RIE):
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VERSION)

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@command -v node >/dev/null || { echo "node not found: install Node.js 20 (see README, Set-up)"; exit 1; }
	@# --ignore-scripts: no package here needs its install script (dynalite runs
	@# in memory), and @asyncapi/parser's dependencies carry a telemetry one.
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

$(PUBLISHER_STAMP): $(PUBLISHER_DIR)/package.json $(PUBLISHER_DIR)/package-lock.json
	@command -v node >/dev/null || { echo "node not found: install Node.js 20 (see README, Set-up)"; exit 1; }
	cd $(PUBLISHER_DIR) && npm ci --no-audit --no-fund --ignore-scripts
	touch $@

## smoke: after sam deploy, checks the stack end to end (key, connect, queue,
## upload, resume, revoke) and prints each step's result and latency:
##   make smoke STACK=wsnotify             (reads the outputs with the aws CLI)
##   make smoke OUTPUTS=outputs.json       (describe-stacks' Outputs, saved)
smoke:
	@if [ -n "$(STACK)" ]; then \
	  aws cloudformation describe-stacks --stack-name "$(STACK)" --query 'Stacks[0].Outputs' --output json > .smoke-outputs.json || exit 1; \
	  $(GO) run ./infra/smoke -outputs .smoke-outputs.json; status=$$?; rm -f .smoke-outputs.json; exit $$status; \
	elif [ -n "$(OUTPUTS)" ]; then \
	  $(GO) run ./infra/smoke -outputs "$(OUTPUTS)"; \
	else \
	  echo "usage: make smoke STACK=<stack name>, or make smoke OUTPUTS=<file of the stack's outputs>"; exit 2; \
	fi

## load: the load test at full size (10,000 connections over 100 owners) against local mode
load:
	$(GO) run ./infra/loadtest -connections 10000 -owners 100 -events 300 -rate 50

## chaos: every fault-injection scenario (infra/chaos: Toxiproxy between the function binaries
## and each backend) with the invariant checked after each; the figures' table lands in
## build/chaos.md (docs/reliability.md). `make test` runs the short set. One scenario alone:
##   make chaos RUN='TestChaos/DynamoDB_latency_2_s'
.PHONY: cost
## cost: what the service costs (infra/cost): the real code paths counted (DynamoDB on dynalite,
## the Lambda binaries under the emulator), priced by infra/cost/prices.json, into docs/cost.md
## (under 2 minutes). `go run ./infra/cost -render` prices the kept counts again without measuring.
cost: tools
	$(GO) run ./infra/cost

.PHONY: chaos
RUN ?= .
chaos: tools
	@mkdir -p $(BUILD_DIR)
	$(GO) test -race -count=1 -v -timeout 30m -run '$(RUN)' ./infra/chaos -args -chaos.full -chaos.report $(CURDIR)/$(BUILD_DIR)/chaos.md

## bench: the performance figures (cloud fan-out, DynamoDB requests, coalescing, the load
## program at 10,000 connections, Lambda start-up) into docs/performance.md's table, with
## the machine they ran on; some 15 minutes
bench: tools
	$(GO) run ./infra/bench

## build: every Lambda bootstrap, for linux/$(LAMBDA_ARCH), under $(BUILD_DIR)/<function>/
build: $(FUNCTIONS:%=$(BUILD_DIR)/%/bootstrap)

$(BUILD_DIR)/%/bootstrap: FORCE
	GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GOBUILD) -o $@ ./functions/$*

## sam-build: sam build in the source folder (--build-in-source, also set in
## samconfig.toml): without it sam copies CodeUri (the whole repository, with
## infra/node/node_modules and .tools) once per function before running make
sam-build:
	sam build --build-in-source

# sam build (BuildMethod: makefile) calls build-<LogicalId> with ARTIFACTS_DIR set.
build-ConnectFunction:    ; GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/connect
build-DisconnectFunction: ; GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/disconnect
build-DefaultFunction:    ; GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/default
build-JobEventsFunction:  ; GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/jobevents
build-PublishFunction:    ; GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/publish
build-S3UploadFunction:   ; GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/s3upload
build-FanoutFunction:     ; GOOS=linux GOARCH=arm64 $(GOBUILD) -o $(ARTIFACTS_DIR)/bootstrap ./functions/fanout

clean:
	rm -rf build .tools $(NODE_DIR)/node_modules $(PUBLISHER_DIR)/node_modules

FORCE:
