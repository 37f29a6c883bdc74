// SPDX-License-Identifier: GPL-2.0
/* hotup_mono links the parent's C glue: the same blk.rs calls it. */
#include "../parent_stub/glue/glue.c"
