# ferry — top-level Makefile. `configure` writes config.mk; running `make` on a fresh clone
# runs autoreconf + configure for you with default options.

-include config.mk

PREFIX ?= $(if $(prefix),$(prefix),/usr/local)
DESTDIR ?=
BINDIR = $(PREFIX)/sbin
MANDIR = $(PREFIX)/share/man
SYSCONFDIR ?= /etc

WARN = -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
       -Wno-unused-parameter -Wformat=2
comma := ,
SAN_FLAGS = $(if $(filter yes,$(ENABLE_SANITIZERS)),-fsanitize=address$(comma)undefined -fno-omit-frame-pointer,)
CFLAGS_USER ?= -g -O2
ALL_CFLAGS = -std=gnu11 $(CFLAGS_USER) $(WARN) $(SAN_FLAGS) -D_GNU_SOURCE -DFERRY_VERSION='"$(VERSION)"' \
             $(if $(filter yes,$(HAVE_SYSTEMD)),-DHAVE_LIBSYSTEMD,) -Isrc $(DEP_CFLAGS)
ALL_LDFLAGS = $(LDFLAGS_USER) $(SAN_FLAGS)
LIBS = $(DEP_LIBS) -lpthread

LIB_SRCS = $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJS = $(LIB_SRCS:.c=.o)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNIT_BINS = $(UNIT_SRCS:.c=)

.PHONY: all check check-sanitizers unit-check integration-check install uninstall clean distclean bench demo
all: src/ferry

config.mk: configure.ac config.mk.in
	@if [ ! -x configure ] || [ configure -ot configure.ac ]; then autoreconf -fi; fi
	./configure

src/%.o: src/%.c $(wildcard src/*.h) config.mk
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

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

bench: src/ferry
	@echo "benchmarks arrive with issue 7"

demo: src/ferry
	contrib/demo.sh

install: src/ferry
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSCONFDIR)/ferry
	install -m 0755 src/ferry $(DESTDIR)$(BINDIR)/ferry
	install -m 0644 man/ferry.8 $(DESTDIR)$(MANDIR)/man8/ferry.8
	install -m 0644 man/ferry.yaml.5 $(DESTDIR)$(MANDIR)/man5/ferry.yaml.5
	[ -e $(DESTDIR)$(SYSCONFDIR)/ferry/ferry.yaml ] || install -m 0644 conf/ferry.yaml $(DESTDIR)$(SYSCONFDIR)/ferry/ferry.yaml

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ferry $(DESTDIR)$(MANDIR)/man8/ferry.8 $(DESTDIR)$(MANDIR)/man5/ferry.yaml.5

clean:
	rm -f src/*.o src/libferry.a src/ferry $(UNIT_BINS)
	rm -rf tests/integration/.work

distclean: clean
	rm -rf config.mk config.log config.status configure autom4te.cache aclocal.m4
