# The two commands of a fresh Debian 12 machine: `make run` and `make test`.
# Both install missing packages first (scripts/install-deps), then build with
# CMake. Everything else is a convenience around the same builds.

BUILD      ?= build
BUILD_SAN  ?= build-sanitize
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

# The Debian package from the tree (debian/): built in a copy under
# $(DEB_DIR) so the tree stays clean; the .deb files land in $(DEB_DIR).
DEB_DIR ?= build-deb
deb: deps
	scripts/build-deb $(DEB_DIR)

# make install: PREFIX (default /usr/local) and DESTDIR as usual.
PREFIX ?= /usr/local
install: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j $(JOBS) --target provisio-cli provisio-docs
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

.PHONY: all deps build run demo deb install test test-all test-sanitize test-valgrind fuzz bench clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The main job: provisio serve on the embedded defaults (config/provisio.json:
# SQLite under ./var, the local provider with sim fallback) on 127.0.0.1;
# prints the URL, an admin token and three curl examples. Ctrl-C stops it.
# Builds only what it runs: the program and the modules it loads (not the
# tests and benchmarks `make build` adds).
PORT ?= 8080
run: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target provisio-cli
	$(BUILD)/provisio --config config/provisio.json serve --listen 127.0.0.1:$(PORT)

# The Host Factory cycle on the same defaults, one process per call as Host
# Factory runs them: templates, request 3 machines, status until complete,
# return them, status until terminated.
demo: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target provisio-cli
	scripts/demo-hostfactory.sh $(BUILD)/provisio

# Every test under AddressSanitizer + UBSan and under valgrind, every parser
# under libFuzzer (about two minutes in all), then every test of the optimised build (its ctest summary
# is the last line); all of it next to a private PostgreSQL server on
# loopback (scripts/with-postgres), so the PostgreSQL store is tested too.
PG_DIR ?= /tmp/provisio-test-postgres
test: build
	scripts/with-postgres $(PG_DIR) $(MAKE) --no-print-directory test-all

test-all:
	$(MAKE) --no-print-directory test-sanitize
	$(MAKE) --no-print-directory test-valgrind
	$(MAKE) --no-print-directory fuzz
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-sanitize: deps
	cmake -S . -B $(BUILD_SAN) -DCMAKE_BUILD_TYPE=Debug -DPV_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build $(BUILD_SAN) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(BUILD_SAN) --output-on-failure -j $(JOBS)

# Every test binary under valgrind: no invalid access, no leak.
test-valgrind: build
	@fail=0; for t in $(BUILD)/test_*; do \
	  [ -x "$$t" ] || continue; \
	  if valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
	       --error-exitcode=99 "$$t" >/dev/null 2>$$t.valgrind; then \
	    echo "valgrind ok: $$t"; \
	  else echo "valgrind FAILED: $$t (see $$t.valgrind)"; cat $$t.valgrind; fail=1; fi; \
	done; exit $$fail

# Every parser under libFuzzer (clang, ASan, UBSan): one target a parser in
# tests/fuzz (the configuration, HTTP requests, the REST API end to end,
# Host Factory input, templates, the server block, JSON read back from the
# store, EC2 XML, ec2Query, SigV4, AWS credentials and IMDS, rest provider
# answers, local machine records, libvirt domain XML), each seeded with its
# corpus (tests/fuzz/corpus/<name>) and run FUZZ_SECONDS: no crash, no leak,
# no broken contract. scripts/run-fuzz.sh prints executions per target.
BUILD_FUZZ ?= build-fuzz
FUZZ_SECONDS ?= 8
fuzz: deps
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=Debug -DPV_FUZZ=ON $(CMAKE_ARGS)
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target $$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$$//')
	scripts/run-fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

bench: build
	@for b in $(BUILD)/bench_*; do echo "== $$b"; $$b; done

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_FUZZ)
