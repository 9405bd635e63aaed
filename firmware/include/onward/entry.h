/* ONW_ENTRY marks a function the host calls by name in the built firmware (onward report counts onw_infer, onw_train
 * and onw_dense; see host/counting.py). The emulated Arm boards are linked with
 * link-time optimisation, which may inline a function into its only caller, clone it with a constant argument
 * folded in, or fold an argument that every call site in the program passes into the function itself: these must
 * stay whole, at their own names, and take any argument (externally_visible). --gc-sections still drops one that
 * nothing calls. The kernel tests, which call every kernel with any argument, build without link-time optimisation. */
#ifndef ONWARD_ENTRY_H
#define ONWARD_ENTRY_H

#if defined(__GNUC__) && !defined(__clang__)
#define ONW_ENTRY __attribute__((noinline, noclone, externally_visible))
#elif defined(__GNUC__)
#define ONW_ENTRY __attribute__((noinline))
#else
#define ONW_ENTRY
#endif

#endif
