# The whole set-up is two commands: `make demo` and `make test`.
PY := .venv/bin/python
PG_URL := postgres://postgres@127.0.0.1:5432/ciaoweb
# PostgreSQL when one answers on this machine, else the embedded SQLite default.
DB_URL := $(or $(DATABASE_URL),$(shell pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo $(PG_URL)))

.PHONY: bootstrap demo test test-fast lint format schema bench soak clean

bootstrap:
	@scripts/bootstrap.sh

# The demo runs its own Redis and a fresh SQLite file: it starts no machine service.
demo: bootstrap
	$(PY) manage.py demo

test: bootstrap
	@scripts/services.sh
	DATABASE_URL=$(DB_URL) scripts/test.sh $(PYTEST_ARGS)

test-fast: bootstrap
	DATABASE_URL=$(DB_URL) $(PY) -m pytest -m "not e2e and not browser" $(PYTEST_ARGS)

lint: bootstrap
	.venv/bin/ruff check ciaoweb simulator tests bench deploy
	.venv/bin/ruff format --check ciaoweb simulator tests bench deploy

format: bootstrap
	.venv/bin/ruff format ciaoweb simulator tests bench deploy
	.venv/bin/ruff check --fix ciaoweb simulator tests bench deploy

# docs/openapi.yaml from the code (tests/api/test_schema.py fails until it matches).
schema: bootstrap
	$(PY) manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

bench: bootstrap
	@scripts/services.sh
	DATABASE_URL=$(DB_URL) $(PY) -m bench

soak: bootstrap
	@scripts/services.sh
	DATABASE_URL=$(DB_URL) CIAO_SOAK=1 $(PY) -m pytest tests/reliability -m soak $(PYTEST_ARGS)

# After a crash: ends every local cluster's processes (the demo's included) by their pid
# files, then removes everything with the `ciao` prefix (namespaces, links, simulators).
clean: bootstrap
	$(PY) -m ciaoweb.localcluster clean
