# AudiFi — every command a developer or CI needs. `make test` installs what it uses.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
PYTEST_ARGS ?=

.PHONY: install test lint format bench chaos fuzz run up clean abi

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

.venv/.synced: $(UV) pyproject.toml uv.lock libs/*/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen
	@touch $@

install: .venv/.synced ## create .venv with every package (uv, from uv.lock)

test: install ## every lib's and service's tests against real PostgreSQL/RabbitMQ/Redis
	$(UV) run --frozen pytest $(PYTEST_ARGS)

lint: install ## ruff: lint and formatting
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

format: install
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

bench: install ## throughput and latency figures, each beside a raw baseline from the same run
	$(UV) run --frozen python libs/kit/bench/kit_bench.py $(BENCH_ARGS)
	$(UV) run --frozen python services/gateway/bench/gateway_bench.py $(GATEWAY_BENCH_ARGS)
	$(UV) run --frozen python services/auth/bench/auth_bench.py $(AUTH_BENCH_ARGS)
	$(UV) run --frozen python libs/kit/bench/chain_bench.py $(CHAIN_BENCH_ARGS)
	$(UV) run --frozen python services/payment/bench/payment_bench.py $(PAYMENT_BENCH_ARGS)
	$(UV) run --frozen python services/nft/bench/nft_bench.py $(NFT_BENCH_ARGS)
	$(UV) run --frozen python services/nft/bench/holdings_bench.py $(HOLDINGS_BENCH_ARGS)
	$(UV) run --frozen python services/nft/bench/locker_bench.py $(LOCKER_BENCH_ARGS)
	$(UV) run --frozen python services/vstudio/bench/rooms_bench.py $(ROOMS_BENCH_ARGS)
	$(UV) run --frozen python services/coin/bench/lottery_bench.py $(COIN_BENCH_ARGS)

CHAOS_SECONDS ?= 300
chaos: install ## the event store's concurrency proof for minutes: racing writers, delayed commits, tailing readers
	AUDIFI_CHAOS_SECONDS=$(CHAOS_SECONDS) AUDIFI_MODEL_EXAMPLES=2000 $(UV) run --frozen pytest \
		libs/kit/tests/test_recorder_concurrency.py libs/kit/tests/test_recorder_model.py \
		-p no:cacheprovider --timeout=0 -q $(PYTEST_ARGS)

FUZZ_EXAMPLES ?= 60
fuzz: install ## the merged OpenAPI fuzzed through the gateway, more examples per operation than make test
	AUDIFI_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(UV) run --frozen pytest tests-e2e/test_fuzz.py \
		-p no:cacheprovider --timeout=0 -q $(PYTEST_ARGS)

run: install ## the whole platform in one process, embedded: gateway on http://127.0.0.1:8080
	$(UV) run --frozen audifi up

up: install ## the distributed topology: one process per service (DATABASE_URL, AMQP_URL, REDIS_URL)
	$(UV) run --frozen audifi up --distributed

clean:
	rm -rf .venv var .pytest_cache .ruff_cache

abi: ## regenerate contracts-abi/build (ABI + bytecode JSON) from contracts-abi/src, byte for byte
	cd contracts-abi && npm ci && node scripts/build.mjs
