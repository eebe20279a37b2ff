# Two commands on a fresh Debian/Ubuntu machine with Python 3.11:
#   make run   - install what is missing, then run the whole product (dialguard up)
#   make test  - install what is missing, then lint, type-check and run every test
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := ffmpeg sip-tester espeak-ng chromium chromium-driver faketime baresip fonts-wqy-microhei kamailio kamailio-tls-modules kamailio-sqlite-modules kamailio-postgres-modules kamailio-extra-modules kamailio-utils-modules sipvicious
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test apt lint clean messages

# `make run` keeps its data in ./data (a dialguard command elsewhere uses ~/.local/share/dialguard).
run: apt $(VENV)/.installed
	DIALGUARD_DATA_DIR="$${DIALGUARD_DATA_DIR:-./data}" $(BIN)/dialguard up

# The fast suites share both cores (each test file on one worker, its fixtures with it);
# the slow ones start the whole product and time its reactions, and the `alone` ones
# compare timings, so those run by themselves after. Both always run; either failing
# fails the target. The slowest tests are listed, to watch CI's 45-minute budget.
test: apt $(VENV)/.installed lint
	@fast=0; $(BIN)/pytest -m "not slow and not alone" -n 2 --dist loadfile --durations=10 || fast=$$?; \
	slow=0; $(BIN)/pytest -m "slow or alone" --durations=15 || slow=$$?; \
	echo "fast suites: exit $$fast, slow and timing suites: exit $$slow"; \
	[ $$fast -eq 0 ] && [ $$slow -eq 0 ]

# After adding or changing a string a person reads: refresh both catalogues (new strings arrive
# untranslated, changed ones fuzzy; tests/api/test_i18n.py fails until they are translated).
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k translate -k N_ --no-location --sort-output \
		-o $(VENV)/messages.pot .
	$(BIN)/pybabel update -i $(VENV)/messages.pot -d api/locale --no-wrap --ignore-obsolete

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Debian packages, installed only when one is missing (no apt-get update otherwise).
apt:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Dialguard needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
