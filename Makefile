# SPDX-License-Identifier: GPL-2.0
# hotup kernel modules, built the way kernel developers expect:
#
#   make KDIR=/path/to/kernel/build            # parent + child v1 and v2
#   make KDIR=... CHILD_VERSION=2              # parent + only hotup_child_v2
#   make KDIR=... clean
#   make KDIR=... MO=/some/dir                 # objects and .ko files there, not here
#   make KDIR=... preflight                    # only the checks below
#
# `cargo xtask build` runs this with KDIR set to the cached guest kernel build.
# Before kbuild runs, `preflight` checks what its own errors would not name:
# the build tree, its Rust metadata, and that the rustc on the PATH (or
# RUSTC=) is the one the kernel was built with (`hotupctl doctor` checks
# these and more on the running kernel).

KDIR ?= /lib/modules/$(shell uname -r)/build
CHILD_VERSION ?=

all: modules

MO ?=
MO_ARG := $(if $(MO),MO=$(MO))

RUSTC ?= rustc
# The build tree proper (an `O=` build keeps its objects and metadata there).
KOBJ := $(or $(O),$(KDIR))
# A rustc given on the command line or in the environment reaches kbuild,
# whose own `RUSTC = rustc` would override one from the environment.
RUSTC_ARG := $(if $(filter command line environment,$(origin RUSTC)),RUSTC="$(RUSTC)")
# scripts/target.json is generated for x86 only.
TARGET_JSON := $(if $(filter x86_64 i386 i686,$(shell uname -m)),scripts/target.json)

preflight:
	@test -f "$(KDIR)/Makefile" || { \
	  echo "hotup: no kernel build tree at $(KDIR): install the running kernel's headers (Debian: linux-headers-$$(uname -r)) or pass KDIR=<build tree>" >&2; exit 1; }
	@test -f "$(KOBJ)/rust/libkernel.rmeta" -a -f "$(KOBJ)/$(or $(TARGET_JSON),rust/libkernel.rmeta)" || { \
	  echo "hotup: $(KOBJ) has no Rust build metadata (rust/libkernel.rmeta $(TARGET_JSON)): Debian's headers never carry it (README: on a real host); Ubuntu: apt install linux-lib-rust-$$(uname -r); see hotupctl doctor" >&2; exit 1; }
	@want=$$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT="\(.*\)"$$/\1/p' "$(KOBJ)/.config" 2>/dev/null); \
	  have=$$("$(RUSTC)" --version 2>/dev/null | head -n 1); \
	  if [ -n "$$want" ] && [ "$$have" != "$$want" ]; then \
	    echo "hotup: the kernel was built with $$want but $(RUSTC) is $${have:-not on the PATH}: Rust modules need that exact rustc (put it first on the PATH or pass RUSTC=)" >&2; exit 1; fi

modules: preflight
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(MO_ARG) $(RUSTC_ARG) CHILD_VERSION="$(CHILD_VERSION)" modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(MO_ARG) clean

.PHONY: all modules clean preflight
