# tests/page/page.mk: the browser test of the admin page Maintenance › Event Notify
# (src/admin/page/). Included by the top-level Makefile (paths relative to the repository root).
#
#   make setup-page   Debian's chromium + chromium-driver, and playwright-core from
#                     tests/page/package-lock.json (npm ci; no browser is ever downloaded)
#   make test-page    builds the daemon, then tests/page/page.test.mjs: the real daemon with its
#                     admin server, a real receiver (`event-notify listen`) on loopback, and headless
#                     Chromium; screenshots in target/page-shots/
#
# Needs Node.js >= 20 with npm (playwright-core's floor), as on the project's machines.

PAGE_DIR = tests/page
PAGE_PKGS = chromium chromium-driver
PAGE_TARGET_DIR = $(abspath $(or $(CARGO_TARGET_DIR),target))

.PHONY: setup-page test-page
export PAGE_LOCK_OK = const v = (f) => require(f).version; process.exit(v('./node_modules/playwright-core/package.json') === \
	require('./package-lock.json').packages['node_modules/playwright-core'].version ? 0 : 1)

setup-page:
	@sh scripts/ensure-apt.sh $(PAGE_PKGS)
	@command -v node >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
		|| { echo "setup-page: Node.js >= 20 with npm is needed (playwright-core)"; exit 1; }
	@# npm ci only when node_modules does not hold the locked playwright-core (no network otherwise)
	@cd $(PAGE_DIR) && { node -e "$$PAGE_LOCK_OK" 2>/dev/null || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error; }

test-page: setup-page
	$(CARGO) build --quiet
	cd $(PAGE_DIR) && EVENT_NOTIFY_BIN=$(PAGE_TARGET_DIR)/debug/event-notify node --test --test-reporter=spec page.test.mjs

EXTRA_TESTS += test-page
