# SPDX-License-Identifier: GPL-2.0
# hotup kernel modules, built the way kernel developers expect:
#
#   make KDIR=/path/to/kernel/build            # parent + child v1 and v2
#   make KDIR=... CHILD_VERSION=2              # parent + only hotup_child_v2
#   make KDIR=... clean
#   make KDIR=... MO=/some/dir                 # objects and .ko files there, not here
#
# `cargo xtask build` runs this with KDIR set to the cached guest kernel build.

KDIR ?= /lib/modules/$(shell uname -r)/build
CHILD_VERSION ?=

all: modules

MO ?=
MO_ARG := $(if $(MO),MO=$(MO))

modules:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(MO_ARG) CHILD_VERSION="$(CHILD_VERSION)" modules

clean:
	$(MAKE) -C $(KDIR) M=$(CURDIR) $(MO_ARG) clean

.PHONY: all modules clean
