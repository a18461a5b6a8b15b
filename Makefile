# verbatim — the two commands a user needs: `make demo` and `make test`.
# Both do all set-up on a fresh machine: fetch the model (pinned sha256), build, run.
# One cargo profile (release) for everything, so nothing is compiled twice.

CARGO ?= cargo
BIN := target/release/verbatim
DEMO_WS ?= demo-ws

.PHONY: all demo test models build man fmt-check lint bench kill-loop clean-demo eval-pii eval-search test-spark

all: build

models:
	bash models/fetch.sh all-MiniLM-L6-v2 multilingual-e5-small SmolLM2-135M-Instruct

build:
	$(CARGO) build --release --locked --bin verbatim

# Manual pages: target/man/verbatim.1 and one per command (verbatim-ingest.1, verbatim-pii-scan.1…).
man: build
	$(BIN) man --out target/man

demo: models build
	rm -rf $(DEMO_WS)
	$(BIN) init $(DEMO_WS)
	$(BIN) -w $(DEMO_WS) ingest data/uci_sentiment.csv --text text --id id --field sentiment --field domain
	@echo; echo '$$ verbatim pii scan data/demo_feedback.csv  (dry run: what ingest will redact)'
	$(BIN) pii scan data/demo_feedback.csv --text comment --id response_id --respondent customer --field country --field channel
	$(BIN) -w $(DEMO_WS) ingest data/demo_feedback.csv --text comment --id response_id --respondent customer --date submitted --score nps --field country --field channel
	$(BIN) -w $(DEMO_WS) stats
	@echo; echo '$$ verbatim search "battery life"'
	$(BIN) -w $(DEMO_WS) search "battery life" --limit 5
	@echo; echo '$$ verbatim search "rude waiter" --where domain=yelp --where sentiment=negative'
	$(BIN) -w $(DEMO_WS) search "rude waiter" --where domain=yelp --where sentiment=negative --limit 5
	@echo; echo '$$ verbatim search "livraison en retard" --where country=FR --since 2024-03-01'
	$(BIN) -w $(DEMO_WS) search "livraison en retard" --where country=FR --since 2024-03-01 --limit 5
	@echo; echo '$$ verbatim search "charged twice refund"   (personal data was redacted at ingest)'
	$(BIN) -w $(DEMO_WS) search "charged twice refund" --limit 3
	@echo; echo '$$ verbatim themes   (the aspect tree, found automatically: what is talked about, what is said, % of verbatims, % negative)'
	$(BIN) -w $(DEMO_WS) themes
	@echo; echo '$$ verbatim report --out $(DEMO_WS)/report.html   (self-contained HTML; also .md and .json)'
	$(BIN) -w $(DEMO_WS) report --out $(DEMO_WS)/report.html
	$(BIN) -w $(DEMO_WS) report --out $(DEMO_WS)/report.md
	@if command -v chromium >/dev/null 2>&1; then bash scripts/screenshot-report.sh $(DEMO_WS)/report.html $(DEMO_WS)/report.png; fi
	@echo; echo '$$ verbatim ask "Why are customers unhappy with delivery?"   (evidence first, from the store: aspects, counts, sentiment, quotes; then the local model summarises it, every sentence cited)'
	$(BIN) -w $(DEMO_WS) ask "Why are customers unhappy with delivery?"
	@echo; echo '$$ verbatim ask "Is the food or the service rated better?"   (a comparison: scores and sentiment from the store, no model)'
	$(BIN) -w $(DEMO_WS) ask "Is the food or the service rated better?"
	@echo; echo '$$ verbatim ask "How many customers mention refunds?"   (counted in the store)'
	$(BIN) -w $(DEMO_WS) ask "How many customers mention refunds?"
	@echo; echo '$$ verbatim user add mkt --role marketing   (a token, printed once, stored as an Argon2id hash)'
	umask 077; $(BIN) -q -w $(DEMO_WS) user add mkt --role marketing > $(DEMO_WS)/.mkt-token
	@echo; echo '$$ VERBATIM_TOKEN=… verbatim search "delivery" --limit 30   (marketing: counts only, cells under 5 suppressed)'
	VERBATIM_TOKEN=$$(cat $(DEMO_WS)/.mkt-token) $(BIN) -w $(DEMO_WS) search "delivery" --limit 30
	@echo; echo '$$ VERBATIM_TOKEN=… verbatim pii reveal R1001   (refused: exit 3)'
	-VERBATIM_TOKEN=$$(cat $(DEMO_WS)/.mkt-token) $(BIN) -w $(DEMO_WS) pii reveal R1001
	@echo; echo '$$ verbatim audit show --user mkt && verbatim audit verify'
	$(BIN) -w $(DEMO_WS) audit show --user mkt
	$(BIN) -w $(DEMO_WS) audit verify

# The tests are built with the registries, then run with no network (scripts/test-no-network.sh).
test: models fmt-check
	$(CARGO) test --release --locked --no-run
	bash scripts/test-no-network.sh

fmt-check:
	@if $(CARGO) fmt --version >/dev/null 2>&1; then $(CARGO) fmt --all -- --check; else echo "rustfmt not installed: skipping format check"; fi

lint:
	$(CARGO) clippy --release --all-targets --locked -- -D warnings

bench: models
	$(CARGO) bench --locked

# Person-name precision on hand-judged spans of real reviews and tweets (issue 12). Needs the
# evaluation-only data of ../shared/data (or DATA=folder); not part of `make test`.
eval-pii:
	$(CARGO) run --release --locked --example person_precision -- $(if $(DATA),--data $(DATA))

# Search quality on the judged query set (issue 15): P@5 and nDCG@10 per mode on Amazon, the
# airline tweets and the demo data; lists unjudged hits. Needs ../shared/data (or DATA=folder).
eval-search: models build
	$(CARGO) run --release --locked --example search_eval -- $(if $(DATA),--data $(DATA))

# The Spark adapter's local[2] checks (issue 18: partition invariance, Spark -> Parquet ->
# ingest --prepared == ingest, a retried task, no personal data written, Spark's fixed cost).
# Installs a JDK 17 (Debian) and pyspark 4.3 in a venv (PyPI) when missing; not part of `make
# test` (it needs a JDK and the ~320 MB pyspark download); `.ci/run` runs it after `make test`
# (61 s from a clean clone, download included, on 2 cores).
SPARK_VENV ?= target/spark-venv
test-spark: models build
	command -v java >/dev/null || (apt-get update && apt-get install -y openjdk-17-jre-headless)
	test -x $(SPARK_VENV)/bin/python || python3 -m venv $(SPARK_VENV)
	@avail=$$(df -Pk . | awk 'NR==2 {print int($$4/1024)}'); echo "test-spark: $$avail MiB free here"; \
	if [ ! -d $(SPARK_VENV)/lib/python3*/site-packages/pyspark ] && [ $$avail -lt 2000 ]; then \
	  echo "test-spark: installing pyspark (a 456 MB source package) needs about 1.5 GB free; free space first (scripts/free-test-binaries.sh removes the test executables)" >&2; exit 1; fi
	$(SPARK_VENV)/bin/pip install -q --no-cache-dir 'pyspark>=4.3,<4.4' 'pandas<3' pyarrow
	$(SPARK_VENV)/bin/python integrations/spark/tests/check_local.py target/release/verbatim models .

kill-loop: models build
	bash scripts/kill-loop.sh $(or $(N),200)

clean-demo:
	rm -rf $(DEMO_WS)
