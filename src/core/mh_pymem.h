/* mh_pymem: memhound's PyMem_SetAllocator hooks on the RAW, MEM and OBJ
 * domains. Each wraps the allocator installed before it (pymalloc stays on) and
 * hands sampled allocations to mh_engine. The GIL must be held to install or
 * remove them. */
#ifndef MH_PYMEM_H
#define MH_PYMEM_H

/* Install the hooks over the current allocators. Returns 0, or MH_ESTATE if
 * they are installed already. */
int mh_pymem_install(void);

/* Put the saved allocators back. Returns 0; MH_ESTATE if the hooks are not
 * installed; MH_EGONE if another tool already took them out of the chain (it
 * restored exactly the allocators memhound had wrapped); MH_EBUSY if another
 * tool replaced an allocator after install and is still there (the hooks then
 * stay in place, wrapped by it, and keep passing calls through). */
int mh_pymem_uninstall(void);

/* 1 while the hooks are part of the allocator chain. */
int mh_pymem_installed(void);

#define MH_EBUSY (-16)
#define MH_EGONE (-2)

#endif
