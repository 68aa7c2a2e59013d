# ringlet: one binary that is both the CLI and the daemon.
# `make help` lists the targets; `make test` is exactly what CI runs.

CARGO ?= cargo
PREFIX ?= /usr/local
RELEASE := target/release/ringlet

.PHONY: help build build-deps run test ci bench install uninstall deb setup fmt-check clippy doc no-async pricing registry

# Only for `--features bundled-sqlite` builds: leave out the SQLite parts the
# OpenCode reader never uses (full-text search, R-trees, extensions, ...);
# 0.3 MB of the 0.7 MB that compiling SQLite in costs.
export LIBSQLITE3_FLAGS := -USQLITE_ENABLE_FTS3 -USQLITE_ENABLE_FTS3_PARENTHESIS \
	-USQLITE_ENABLE_FTS5 -USQLITE_ENABLE_RTREE -USQLITE_ENABLE_DBSTAT_VTAB -USQLITE_ENABLE_STAT4 \
	-USQLITE_ENABLE_COLUMN_METADATA -USQLITE_SOUNDEX -USQLITE_ENABLE_LOAD_EXTENSION \
	-DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_DEPRECATED -DSQLITE_OMIT_SHARED_CACHE

help: ## Print this help message
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-10s %s\n", $$1, $$2}'

build: build-deps ## Build the release binary (target/release/ringlet)
	$(CARGO) build --release --locked

build-deps: ## Install what the default build links (the system SQLite), if missing
	bash tests/setup.sh --build-deps

run: build ## Build, start the daemon, and show agents, providers and daemon status
	$(RELEASE) daemon
	$(RELEASE) agents list
	$(RELEASE) providers list
	$(RELEASE) daemon status
	$(RELEASE) usage

setup: ## Install what the tests need (real agents from npm, LiteLLM, tools); idempotent
	bash tests/setup.sh

fmt-check:
	$(CARGO) fmt --check

clippy:
	$(CARGO) clippy --locked --all-targets -- -D warnings

# design.md §2: no async runtime anywhere in the dependency tree.
ASYNC_CRATES := tokio|async-std|async-io|async-executor|async-global-executor|smol|futures-executor|zbus
no-async:
	@if $(CARGO) tree --locked -e normal,build --prefix none | grep -E '^($(ASYNC_CRATES)) v'; then \
		echo "error: an async runtime crate is in the dependency tree (see above)"; exit 1; \
	else echo "no async runtime in cargo tree"; fi

doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --no-deps --document-private-items

test: setup fmt-check clippy no-async ## Set up, check formatting, lints and deps, run every test
	# Inside a private session bus with gnome-keyring's Secret Service, so the
	# keychain tests use the real thing (and must: REQUIRE_KEYCHAIN).
	bash tests/with-keyring.sh env REQUIRE_KEYCHAIN=1 RINGLET_REQUIRE_CCUSAGE=1 RINGLET_TEST_REQUIRE_LITELLM=1 $(CARGO) test --locked

ci: test doc ## Everything CI checks, plus the docs build

bench: setup ## Print the figures table (release build)
	$(CARGO) bench --locked --bench figures

# LiteLLM's file as PyPI ships it: `pip download litellm --no-deps -d /tmp/litellm`
# gives the wheel. LITELLM_LEGACY names older wheels or files for the models
# LiteLLM has since dropped (see the script's header).
pricing: ## Regenerate manifests/pricing.json from LITELLM=<litellm wheel or JSON>
	@test -n "$(LITELLM)" || { echo "usage: make pricing LITELLM=<wheel or JSON> [LITELLM_LEGACY='<older> ...']" >&2; exit 2; }
	python3 tests/tools/pricing_snapshot.py $(LITELLM) $(addprefix --legacy ,$(LITELLM_LEGACY))

# This repository is itself a registry (design.md §8): manifests/, scripts/
# and the pricing snapshot in the registry layout, indexed by registry.json.
# The binary embeds the same files (a unit test keeps them byte-equal).
# Publish the tree as is (sign it: minisign -Sm target/registry/registry.json).
registry: ## Assemble this repository's registry into target/registry (CHANNEL=stable)
	rm -rf target/registry
	$(CARGO) run --quiet --locked -- registry index target/registry --repo . --channel $(or $(CHANNEL),stable)

# `make install PREFIX=~/.local` puts ringlet on PATH for one user (no root).
# Installs the binary, the man page, bash/zsh/fish completions, the systemd
# user unit (not enabled), LICENSE and NOTICE; src/dist/install.sh says where
# each goes and takes BINDIR, MANDIR, SYSTEMDUSERUNITDIR... to override one.
# BIN=<binary> installs that binary instead of building the release one;
# GEN=<binary> runs another binary to print the man page and completions
# (a cross build's BIN cannot run here).
install: $(if $(BIN),,build) ## Install binary, man page, completions, user unit, licence (PREFIX=/usr/local, DESTDIR)
	BIN='$(or $(BIN),$(RELEASE))' GEN='$(GEN)' PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' CARGO='$(CARGO)' \
		sh src/dist/install.sh install

uninstall: ## Remove what `make install` installed (the same PREFIX, DESTDIR)
	PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' sh src/dist/install.sh uninstall

# The package links the system's libdbus-1 (`system-dbus`) instead of the
# copy the default `vendored-dbus` feature compiles in, as Debian prefers.
# Offline, from vendored sources, for packagers (vendor/ and .cargo/ go in
# their source tarball, not in this repository):
#   mkdir -p .cargo && cargo vendor --locked vendor > .cargo/config.toml
#   make deb CARGO='cargo --offline'
# (README "Packaging"). BIN=<binary> packages that binary instead;
# DEB_OUT=<dir> writes the package elsewhere.
DEB_FEATURES := sqlite,net,system-dbus
DEB_OUT ?= target/deb
deb: ## Build a Debian package into target/deb (release, system libdbus; DEBFULLNAME, DEBEMAIL)
	bash tests/setup.sh --deb-deps
	$(if $(BIN),,$(CARGO) build --release --locked --no-default-features --features $(DEB_FEATURES))
	CARGO='$(CARGO)' $(if $(BIN),,CARGO_TREE_FLAGS='--no-default-features --features $(DEB_FEATURES)') \
		sh src/dist/deb.sh '$(or $(BIN),$(RELEASE))' '$(DEB_OUT)'
