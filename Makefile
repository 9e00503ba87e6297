# Batch-on-Kafka: the two commands that matter are `make up` and `make test`.
# Both install what is missing, build, and start what they need.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
# The 200k-row test, the 2-minute torture smoke and the 3-broker cluster test
# (three JVMs, ~3 min, broker behaviour rather than our memory safety) are too
# slow under ASan for CI; every other e2e test runs twice.
ASAN_E2E_SKIP ?= e2e_test_worker_scale|e2e_test_torture_smoke|e2e_test_kafka_cluster
CMAKE_GEN  := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all deps build build-asan up cli-links down test test-unit test-asan test-e2e fuzz bench bench-peers bench-smoke torture kafka-up kafka-down clean

all: build

deps:
	@bash deploy/deps.sh

# deploy/build.sh is also what the Docker image's build stage runs.
build: deps
	JOBS=$(JOBS) BUILD_TYPE=RelWithDebInfo bash deploy/build.sh $(BUILD)

build-asan: deps
	@test -f $(ASAN_BUILD)/CMakeCache.txt || cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DBOK_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Starts Kafka (KRaft) and every service in the background; logs under .run/logs.
up: build
	@bash deploy/stack.sh up
	@$(MAKE) --no-print-directory cli-links

# The user guide's `./batchcli` and `./batch.cli` (one program): links at the
# repository root into the build (run from elsewhere with -C DIR -f Makefile).
cli-links:
	@ln -sfn $(BUILD)/cli/batchcli batchcli
	@ln -sfn $(BUILD)/cli/batch.cli batch.cli
	@echo "CLI: ./batchcli and ./batch.cli -> $(BUILD)/cli/batchcli (BATCH_API_URL defaults to http://localhost:8000)"

down:
	@bash deploy/stack.sh down

kafka-up: deps
	@bash deploy/kafka.sh start

kafka-down:
	@bash deploy/kafka.sh stop

# Everything CI runs: unit tests, the same unit tests under ASan+UBSan, the
# end-to-end tests against a real Kafka broker, fuzz and benchmark smoke runs.
test: build build-asan kafka-up
	cd $(BUILD) && ctest --output-on-failure -j 2 -L unit
	FUZZ_JOBS=2 bash tests/fuzz/run.sh 10
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j 2 -L unit
	cd $(BUILD) && ctest --output-on-failure -L e2e
	cd $(ASAN_BUILD) && BOK_BUILD_DIR=$(CURDIR)/$(ASAN_BUILD) ASAN_OPTIONS=detect_leaks=0 ctest --output-on-failure -L e2e -E "$(ASAN_E2E_SKIP)"

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j 2 -L unit

test-asan: build-asan
	cd $(ASAN_BUILD) && ctest --output-on-failure -j 2 -L unit

test-e2e: build kafka-up
	cd $(BUILD) && ctest --output-on-failure -L e2e

# Benchmarks against the real local stack (not part of `make test`; a
# 10,000-row smoke run of them is). Figures: docs/PERFORMANCE.md.
# Environment: BENCH_ROWS (default 1,000,000), BENCH_BIG_MB=250,1000 (the memory
# section's upload sizes, issue 20; default 64), e.g. BENCH_ROWS=200000 make bench.
bench: build kafka-up
	BOK_BUILD_DIR=$(CURDIR)/$(BUILD) /usr/bin/python3 bench/e2e/run_bench.py

# Kafka Connect (FileStreamSource) and Frictionless validate on the same file
# as our ingest (bench/peers/run_peers.py; BENCH_PEERS_ROWS, default 200,000).
# Fetches both on first use; not part of `make test`.
bench-peers: build kafka-up
	BOK_BUILD_DIR=$(CURDIR)/$(BUILD) /usr/bin/python3 bench/peers/run_peers.py

# Torture run (tests/torture/README.md): several tenants' jobs while processes
# are SIGKILLed/SIGSTOPped, a private broker (never the one on 9092) restarts
# and the job service is slowed; invariants tabled per round. Bounded by
# TORTURE_MINUTES; TORTURE_SEED replays a run. A 2-minute smoke of it is
# e2e_test_torture_smoke in `make test`.
TORTURE_MINUTES ?= 10
torture: build
	BOK_BUILD_DIR=$(CURDIR)/$(BUILD) TORTURE_MINUTES=$(TORTURE_MINUTES) /usr/bin/python3 tests/torture/torture.py

# libFuzzer (clang, ASan+UBSan) on every parser that takes outside input:
# CSV, NDJSON, schema compiler, validator, detection, multipart, routes and
# queries, the protobuf decoders of every gRPC request. FUZZ_SECONDS per
# target, FUZZ_JOBS at once (default 1; `make fuzz FUZZ_SECONDS=3600`: an hour each);
# make test runs 10 s each. Figures and corpora: docs/SECURITY.md.
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
fuzz: deps
	FUZZ_JOBS=$(FUZZ_JOBS) bash tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
