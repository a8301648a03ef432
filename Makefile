# The two entry points: `make run` (portal on the embedded default) and `make test`.
.PHONY: run test lint bench-issuance

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh

lint:
	.venv/bin/ruff check . && CERTPORTAL_KEK=$$(openssl rand -base64 32) CERTPORTAL_SECRET_KEY=lint .venv/bin/mypy .

bench-issuance:
	bash scripts/setup.sh && .venv/bin/python benchmarks/bench_issuance.py
