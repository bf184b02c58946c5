# Churnwatch: `make demo` runs the pipeline end to end, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit test-bigquery lint format bench venv clean tools template template-spec \
	deploy pin-launcher-image lock

# Every package comes from requirements.lock, checked against its sha256 hashes; the project
# itself is installed without dependencies and without build isolation (its build backend,
# setuptools, is in the lock too).
$(STAMP): requirements.lock setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing locked dependencies into $(VENV) (about 90 s the first time)..."
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

venv: $(STAMP)

# Regenerate requirements.lock from requirements.txt (after changing a pin or adding a
# dependency): every transitive dependency pinned, with the hashes of all its files on PyPI.
PIP_TOOLS := pip-tools==7.6.2
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(PIP_TOOLS)
	$(VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--output-file requirements.lock requirements.txt

demo: $(STAMP)
	$(VENV)/bin/churnwatch demo

test: $(STAMP)
	$(PY) -m pytest

# The fast part (pure rules and single transforms, < 1 min): tests/conftest.py marks by file.
test-unit: $(STAMP)
	$(PY) -m pytest -m "unit or transform"

# Opt-in, against real BigQuery (needs GOOGLE_APPLICATION_CREDENTIALS); says NOT RUN without.
test-bigquery: $(STAMP)
	$(PY) -m tests.live_bigquery

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

# The infra tests need the tools venv (an extra prerequisite of the `test` target above).
test: $(TOOLS_STAMP)

REGION ?= europe-west1
GIT_SHA := $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
TEMPLATE_IMAGE ?= $(REGION)-docker.pkg.dev/$(or $(PROJECT),PROJECT)/churnwatch/churnwatch-flex:$(GIT_SHA)
TEMPLATE_SPEC ?= build/flex-template/churnwatch.json
FLEX_METADATA := infra/flex-template/metadata.json
FLEX_SPEC_ARGS = --image $(TEMPLATE_IMAGE) --sdk-language PYTHON \
	--metadata-file $(FLEX_METADATA) --enable-streaming-engine

# Builds and pushes the launcher image, uploads the template spec. Needs docker and gcloud
# credentials (gcloud auth configure-docker $(REGION)-docker.pkg.dev) and `terraform apply` first.
template:
	@if [ -z "$(PROJECT)" ] || [ -z "$(TEMPLATE_BUCKET)" ]; then \
		echo "make template: set PROJECT and TEMPLATE_BUCKET (terraform output dataflow_bucket), e.g."; \
		echo "  make template PROJECT=my-project TEMPLATE_BUCKET=my-project-churnwatch-dataflow"; \
		echo "It needs docker and gcloud credentials; 'make template-spec' works offline."; \
		exit 2; \
	fi
	docker build -f infra/flex-template/Dockerfile -t $(TEMPLATE_IMAGE) .
	docker push $(TEMPLATE_IMAGE)
	gcloud dataflow flex-template build gs://$(TEMPLATE_BUCKET)/templates/churnwatch.json \
		--project $(PROJECT) $(FLEX_SPEC_ARGS)
	@echo "template_gcs_path = gs://$(TEMPLATE_BUCKET)/templates/churnwatch.json"

# Pin the launcher base image of the Dockerfile to the digest its tag points at today
# (tag@sha256:...). Needs docker and the network; run it after bumping the tag.
DOCKERFILE := infra/flex-template/Dockerfile
pin-launcher-image:
	@base=$$(sed -n 's|^FROM \(gcr.io/dataflow-templates-base/[^@ ]*\).*|\1|p' $(DOCKERFILE)); \
	digest=$$(docker buildx imagetools inspect "$$base" --format '{{json .Manifest.Digest}}' | tr -d '"'); \
	case "$$digest" in sha256:*) ;; *) echo "no digest for $$base"; exit 1;; esac; \
	sed -i "s|^FROM $$base.*|FROM $$base@$$digest|" $(DOCKERFILE); \
	echo "pinned $$base@$$digest"

# The same spec gcloud uploads (image + metadata, validated by gcloud), written locally.
# gcloud --format=json prints the spec as one JSON string, hence the json.load + print.
template-spec:
	@mkdir -p $(dir $(TEMPLATE_SPEC))
	gcloud dataflow flex-template build gs://local-only/churnwatch.json $(FLEX_SPEC_ARGS) \
		--print-only --format=json \
		| $(PYTHON) -c 'import json, sys; print(json.loads(sys.stdin.read()))' > $(TEMPLATE_SPEC).tmp
	mv $(TEMPLATE_SPEC).tmp $(TEMPLATE_SPEC)
	@echo "wrote $(TEMPLATE_SPEC)"

# One command from an empty project to a running streaming job (docs/deploy.md): the
# infrastructure, then the launcher image and template spec, then the job. Needs terraform,
# docker and gcloud credentials; terraform shows each plan and asks before applying it.
TF := terraform -chdir=infra/terraform
deploy:
	@if [ -z "$(PROJECT)" ]; then \
		echo "make deploy: set PROJECT, e.g. make deploy PROJECT=my-project [REGION=europe-west1]"; \
		exit 2; \
	fi
	$(TF) init -input=false
	$(TF) apply -var project=$(PROJECT) -var region=$(REGION)
	bucket=$$($(TF) output -raw dataflow_bucket); bucket=$${bucket#gs://}; \
	$(MAKE) template PROJECT=$(PROJECT) TEMPLATE_BUCKET=$$bucket && \
	$(TF) apply -var project=$(PROJECT) -var region=$(REGION) \
		-var template_gcs_path=gs://$$bucket/templates/churnwatch.json
