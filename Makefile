# ferry — top-level Makefile. `configure` writes config.mk; running `make` on a fresh clone
# runs autoreconf + configure for you with default options.

-include config.mk

PREFIX ?= $(if $(prefix),$(prefix),/usr/local)
DESTDIR ?=
BINDIR = $(PREFIX)/sbin
MANDIR = $(PREFIX)/share/man
SYSCONFDIR ?= /etc
# systemd units: /lib/systemd/system for PREFIX=/usr (Debian), else under PREFIX.
SYSTEMDUNITDIR ?= $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)

WARN = -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
       -Wno-unused-parameter -Wformat=2
comma := ,
SAN_FLAGS = $(if $(filter yes,$(ENABLE_SANITIZERS)),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer,)
CFLAGS_USER ?= -g -O2
ALL_CFLAGS = -std=gnu11 $(CFLAGS_USER) $(WARN) $(SAN_FLAGS) -D_GNU_SOURCE -DFERRY_VERSION='"$(VERSION)"' \
             $(if $(filter yes,$(HAVE_SYSTEMD)),-DHAVE_LIBSYSTEMD,) -Isrc $(DEP_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS_USER) $(SAN_FLAGS)
LIBS = $(DEP_LIBS) -lpthread

# src/admin_page.c is generated (below): named here so a clean clone builds it too.
LIB_SRCS = $(filter-out src/main.c,$(sort $(wildcard src/*.c) src/admin_page.c))
LIB_OBJS = $(LIB_SRCS:.c=.o)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:.c=)

.PHONY: all check check-sanitizers unit-check integration-check install uninstall clean distclean bench demo
.PHONY: fuzz fuzz-short fuzz-build lint tidy check-valgrind
all: src/ferry

config.mk: configure.ac config.mk.in
	@if [ ! -x configure ] || [ configure -ot configure.ac ]; then autoreconf -fi; fi
	./configure

src/%.o: src/%.c $(wildcard src/*.h) config.mk
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The admin status page is edited as plain HTML and compiled in as a byte array (od and sed
# are POSIX; xxd is not always installed).
src/admin_page.c: src/admin_page.html Makefile
	{ echo '/* Generated from src/admin_page.html by the Makefile: do not edit. */'; \
	  echo '#include "admin.h"'; echo 'const unsigned char admin_page[] = {'; \
	  od -A n -v -t x1 src/admin_page.html | sed -e 's/[0-9a-f][0-9a-f]/0x&,/g' -e 's/^ *//'; \
	  echo '0x00 };'; echo 'const size_t admin_page_len = sizeof admin_page - 1;'; } >$@.tmp
	mv $@.tmp $@

src/libferry.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

src/ferry: src/main.o src/libferry.a
	$(CC) $(ALL_LDFLAGS) -o $@ src/main.o src/libferry.a $(LIBS)

tests/unit/test_%: tests/unit/test_%.c src/libferry.a $(wildcard src/*.h)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -o $@ $< src/libferry.a $(ALL_LDFLAGS) $(LIBS) $(CHECK_LIBS)

# The test command: unit tests (check) then integration tests against real peers.
check: unit-check integration-check

unit-check: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; CK_FORK=yes ./$$t; done

integration-check: src/ferry
	tests/integration/run.sh

# The same tests against an ASan+UBSan build, configured in a copy of the tracked files so
# this tree's build is left alone. Any sanitizer report in ferry's log fails the test.
SAN_DIR = .work/sanitizers
check-sanitizers: src/ferry
	rm -rf $(SAN_DIR) && mkdir -p $(SAN_DIR)
	git ls-files -z | xargs -0 cp --parents -t $(SAN_DIR)
	cd $(SAN_DIR) && autoreconf -fi >/dev/null 2>&1 && ./configure -q --enable-sanitizers && $(MAKE) -s src/ferry unit-check
	FERRY=$(CURDIR)/$(SAN_DIR)/src/ferry tests/integration/run.sh

# libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang against the library sources
# compiled with the same sanitizers in $(FUZZ_DIR), apart from the normal build. `make fuzz`
# runs each for FUZZ_SECONDS with its seed corpus (tests/fuzz/corpus/<target>); new inputs
# and crash artifacts go to $(FUZZ_DIR). `make fuzz-short` runs each for 15 seconds.
FUZZ_DIR = .work/fuzz
FUZZ_CC = clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS = $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))
FUZZ_OBJS = $(patsubst src/%.c,$(FUZZ_DIR)/obj/%.o,$(LIB_SRCS))
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
              -fno-sanitize-recover=all -D_GNU_SOURCE -DFERRY_VERSION='"$(VERSION)"' \
              $(if $(filter yes,$(HAVE_SYSTEMD)),-DHAVE_LIBSYSTEMD,) -Isrc $(DEP_CFLAGS)
# fuzz_config: no DNS (neither getaddrinfo nor configured resolvers) and no special files
# (see the comment in tests/fuzz/fuzz_config.c).
$(FUZZ_DIR)/fuzz_config: FUZZ_LDEXTRA = -Wl,--wrap=getaddrinfo -Wl,--wrap=tls_check_cert_key \
    -Wl,--wrap=dns_resolve_sync

$(FUZZ_DIR)/obj/%.o: src/%.c $(wildcard src/*.h) config.mk
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/libferry.a: $(FUZZ_OBJS)
	rm -f $@ && ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libferry.a $(wildcard src/*.h)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libferry.a $(FUZZ_LDEXTRA) $(LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-short: fuzz-build
	tests/fuzz/run.sh $(FUZZ_DIR) 15 $(FUZZ_TARGETS)

# Static checks: cppcheck must be clean (a deliberate exception is marked in the source with
# an inline suppression and a reason). sys/queue.h is given explicitly so that the TAILQ_*
# macros expand without cppcheck reading every system header.
QUEUE_H = $(firstword $(wildcard /usr/include/sys/queue.h /usr/include/*/sys/queue.h))
CPPCHECK_FLAGS = --enable=warning,performance,portability --error-exitcode=1 --inline-suppr \
                 --quiet --std=c11 --suppress=missingIncludeSystem -D_GNU_SOURCE \
                 -DHAVE_LIBSYSTEMD -DFERRY_VERSION='"lint"' $(if $(QUEUE_H),--include=$(QUEUE_H),) -Isrc
lint: src/admin_page.c
	cppcheck $(CPPCHECK_FLAGS) src/*.c

# clang-tidy with bug-finding checks; any warning fails. A false positive is silenced on its
# line with /* NOLINT(check): why */. Left out: easily-swappable-parameters (style),
# DeprecatedOrUnsafeBufferHandling (wants Annex K functions) and valist.Uninitialized (clang
# 14 calls the va_list uninitialized in plain va_start; vsnprintf; va_end sequences).
TIDY_CHECKS = -*,bugprone-*,-bugprone-easily-swappable-parameters,clang-analyzer-*,$\
              -clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling,$\
              -clang-analyzer-valist.Uninitialized
tidy: config.mk src/admin_page.c
	clang-tidy --quiet --checks='$(TIDY_CHECKS)' --warnings-as-errors='*' src/*.c -- \
	    -std=gnu11 -D_GNU_SOURCE -DHAVE_LIBSYSTEMD -DFERRY_VERSION='"lint"' -Isrc $(DEP_CFLAGS)

# A few integration tests with ferry under valgrind memcheck (tests/integration/
# valgrind-ferry.sh stands in for the binary): any memory error or definite leak makes ferry
# exit 99, which the test reports as a failure.
VALGRIND_TESTS = basic_proxy h2_basic h2_bodies h2_upstream reload tls_records upstream_tls
check-valgrind: src/ferry
	FERRY=$(CURDIR)/tests/integration/valgrind-ferry.sh FERRY_BIN=$(CURDIR)/src/ferry \
	    tests/integration/run.sh $(VALGRIND_TESTS)

# Side by side with nginx, HAProxy and h2o (issue 7; not part of `make check`): about 20
# minutes on 2 cores. ROUNDS, DURATION, QUICK=1, SCENARIOS=1,2, PROXIES: see bench/README.md.
bench: src/ferry
	FERRY_PREBUILT=1 bench/run.sh

demo: src/ferry
	contrib/demo.sh

install: src/ferry
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSCONFDIR)/ferry
	install -m 0755 src/ferry $(DESTDIR)$(BINDIR)/ferry
	install -m 0644 man/ferry.8 $(DESTDIR)$(MANDIR)/man8/ferry.8
	install -m 0644 man/ferry.yaml.5 $(DESTDIR)$(MANDIR)/man5/ferry.yaml.5
	[ -e $(DESTDIR)$(SYSCONFDIR)/ferry/ferry.yaml ] || install -m 0644 conf/ferry.yaml $(DESTDIR)$(SYSCONFDIR)/ferry/ferry.yaml
	install -d $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/logrotate.d
	sed -e 's|/usr/sbin/ferry|$(BINDIR)/ferry|g' -e 's|/etc/ferry/|$(SYSCONFDIR)/ferry/|g' \
	    contrib/ferry.service >$(DESTDIR)$(SYSTEMDUNITDIR)/ferry.service
	chmod 0644 $(DESTDIR)$(SYSTEMDUNITDIR)/ferry.service
	install -m 0644 contrib/ferry.socket $(DESTDIR)$(SYSTEMDUNITDIR)/ferry.socket
	install -m 0644 contrib/ferry.logrotate $(DESTDIR)$(SYSCONFDIR)/logrotate.d/ferry

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ferry $(DESTDIR)$(MANDIR)/man8/ferry.8 $(DESTDIR)$(MANDIR)/man5/ferry.yaml.5
	rm -f $(DESTDIR)$(SYSTEMDUNITDIR)/ferry.service $(DESTDIR)$(SYSTEMDUNITDIR)/ferry.socket \
	      $(DESTDIR)$(SYSCONFDIR)/logrotate.d/ferry

clean:
	rm -f src/*.o src/libferry.a src/ferry src/admin_page.c $(UNIT_BINS)
	rm -rf tests/integration/.work

distclean: clean
	rm -rf config.mk config.log config.status configure autom4te.cache aclocal.m4
