# README.md's two set-up commands (demo: the main job; test: what CI runs), and the long runs.
.PHONY: demo test bench sentiment
demo:  ## dump, serve and call the iris example
	scripts/demo.sh
test:  ## lint, type-check and run the whole test suite
	scripts/test.sh
bench: ## the runtime benchmark (bench/runtime.py)
	scripts/bootstrap.sh && .venv/bin/python bench/runtime.py
sentiment: ## the paper's case study A (Fig. 5) through a local catalog (examples/sentiment)
	scripts/bootstrap.sh && .venv/bin/python examples/sentiment/run.py
