# opsdrill developer entry points. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

SCENARIO ?= outage
VARIANT ?= resources
NAMESPACE ?= seo-tool
DRILL_ARGS ?=
TRAINEE ?=

.PHONY: help deps venv host-packages lab lab-build lab-down setup teardown drill shell test test-unit lint

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

deps: host-packages venv ## Debian packages and the Python venv

host-packages: ## Debian packages the lab and the tests need (root)
	scripts/install_host_packages.sh

venv: $(VENV)/.installed ## Python venv with pinned ansible-core, kubernetes, collections, test tools

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

lab-build: ## Build (or reuse) the lab's binaries and images in the foreground, with progress
	scripts/lab_build.sh

lab: deps ## Bring the built-in lab cluster up (cold: builds Kubernetes and images first)
	scripts/lab_build.sh
	$(VENV)/bin/ansible-playbook lab.yml -e lab_state=present

lab-down: venv ## Stop the lab and remove everything it created (the build cache stays)
	$(VENV)/bin/ansible-playbook lab.yml -e lab_state=absent

setup: venv ## Deploy the SEO tool stack and monitoring (NAMESPACE=seo-tool)
	$(VENV)/bin/ansible-playbook setup.yml -e drill_namespace=$(NAMESPACE)

teardown: venv ## Remove what setup created
	$(VENV)/bin/ansible-playbook teardown.yml -e drill_namespace=$(NAMESPACE)

drill: ## Run a drill: the lab unless KUBECONFIG names another cluster (SCENARIO=outage|error-spike VARIANT=...)
	@if [ -z "$$KUBECONFIG" ]; then $(MAKE) lab; else $(MAKE) deps; fi
	$(VENV)/bin/ansible-playbook setup.yml -e drill_namespace=$(NAMESPACE) $${KUBECONFIG:+-e opsdrill_kubeconfig=$$KUBECONFIG}
	$(VENV)/bin/ansible-playbook drill-$(SCENARIO).yml -e drill_namespace=$(NAMESPACE) -e variant=$(VARIANT) $${KUBECONFIG:+-e opsdrill_kubeconfig=$$KUBECONFIG} $(DRILL_ARGS)

shell: ## A bash as a lab trainee where the seed commands work (TRAINEE=trainee-1 [NAMESPACE=seo-tool])
	@if [ -z "$(TRAINEE)" ]; then echo "make shell: set TRAINEE, e.g. make shell TRAINEE=trainee-1 (the lab's trainees are in /var/lib/opsdrill-lab/lab.json)" >&2; exit 2; fi
	python3 scripts/trainee_shell.py --trainee "$(TRAINEE)" --namespace "$(NAMESPACE)"

test: ## The test command: lint, sanity, unit tests, then the lab and every cluster test
	scripts/run_tests.sh

test-unit: venv ## Fast unit tests only (no cluster)
	$(PY) -m pytest tests/unit -q

lint: venv ## yamllint, ansible-lint (production profile), ansible-test sanity
	scripts/lint.sh
