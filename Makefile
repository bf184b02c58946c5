# Churnwatch: `make demo` runs the pipeline end to end, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench venv clean tools template template-spec

$(STAMP): requirements.txt setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) (about 90 s the first time)..."
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e .
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/churnwatch demo

test: $(STAMP) $(TOOLS_STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP)
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) $(TOOLS_VENV) build *.egg-info .pytest_cache demo-output

# --- infra: static-check tools and the Flex Template (see infra/README.md) -------------------
TOOLS_VENV ?= .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
TOOLS_PY := $(TOOLS_VENV)/bin/python

$(TOOLS_STAMP): requirements-tools.txt
	@test -x $(TOOLS_PY) || $(PYTHON) -m venv $(TOOLS_VENV)
	@echo "installing checkov and python-hcl2 into $(TOOLS_VENV) (about 2 min the first time)..."
	$(TOOLS_PY) -m pip install --quiet --upgrade pip
	$(TOOLS_PY) -m pip install --quiet $$(grep -E '^checkov==' requirements-tools.txt)
	$(TOOLS_PY) -m pip install --quiet --upgrade --target $(TOOLS_VENV)/hcl2 \
		$$(grep -E '^(python-hcl2|lark|regex)==' requirements-tools.txt)
	@touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

REGION ?= europe-west1
TEMPLATE_IMAGE ?= $(REGION)-docker.pkg.dev/$(PROJECT)/churnwatch/churnwatch-flex:$(shell git rev-parse --short HEAD)
TEMPLATE_SPEC ?= build/flex-template/churnwatch.json

# Builds the image with Cloud Build and uploads the template spec; needs gcloud credentials.
template:
	@if [ -z "$(PROJECT)" ] || [ -z "$(TEMPLATE_BUCKET)" ]; then \
		echo "make template needs PROJECT and TEMPLATE_BUCKET, e.g."; \
		echo "  make template PROJECT=my-project TEMPLATE_BUCKET=my-project-churnwatch-tmp"; \
		echo "(and gcloud credentials; 'make template-spec' writes a local spec without cloud)"; \
		exit 2; \
	fi
	gcloud dataflow flex-template build gs://$(TEMPLATE_BUCKET)/templates/churnwatch.json \
		--project $(PROJECT) \
		--image-gcr-path $(TEMPLATE_IMAGE) \
		--sdk-language PYTHON \
		--flavor python3 \
		--metadata-file infra/flex-template/metadata.json \
		--dockerfile infra/flex-template/Dockerfile \
		--staging-location gs://$(TEMPLATE_BUCKET)/staging \
		--temp-location gs://$(TEMPLATE_BUCKET)/temp \
		--env FLEX_TEMPLATE_PYTHON_PY_FILE=/template/infra/flex-template/main.py \
		--env FLEX_TEMPLATE_PYTHON_SETUP_FILE=/template/setup.py \
		.

# Local template spec (image + metadata, the same shape gcloud uploads); no cloud needed.
template-spec: $(STAMP)
	$(PY) infra/flex-template/spec.py --image "$(TEMPLATE_IMAGE)" --out $(TEMPLATE_SPEC)
