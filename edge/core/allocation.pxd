# C types for allocation.py when Cython compiles it on CPython (setup.py); the .py
# file stays the source and MicroPython never reads this. Only positions and
# constraint numbers are C integers: current values stay Python ints, so no
# hostile limit can overflow them. share() stays a plain def (the bench wraps it).
import cython

@cython.locals(i=Py_ssize_t, k=Py_ssize_t, k2=Py_ssize_t, m=Py_ssize_t, R=list, admitted=list, waits=list,
               path=tuple, rate=list, first=list, got=int, simple=bint, fast=bint)
cdef _stage(list members, list paths, object exact, list caps, list stage, list lo, list hi, list options,
            list alloc, list modes, list st, list by, list why)

@cython.locals(pc=Py_ssize_t, pw=Py_ssize_t, n_hi=Py_ssize_t, pf=Py_ssize_t, i=Py_ssize_t, k=Py_ssize_t,
               k2=Py_ssize_t, his=list, los=list, heap=list, path=tuple)
cdef _rise(list members, list paths, object exact, list R, list rate, list first, Py_ssize_t m, list by_hi,
           list waits, list lo, list hi, list alloc, list modes, list st, list by)

@cython.locals(i=Py_ssize_t, k=Py_ssize_t, out=list)
cdef list _below_demand(list caps, list stage, list hi, list alloc, list modes, list by)

@cython.locals(i=Py_ssize_t, k=Py_ssize_t, given=list, path=tuple)
cdef list _top_up(list paths, object exact, list caps, list which, list hi, list alloc, list modes, object most)

@cython.locals(n=Py_ssize_t, i=Py_ssize_t, count=Py_ssize_t, k=Py_ssize_t, keys=list, prev_sent=list,
               sort_key=list, hi=list, prio_of=list, options_of=list, memo_of=list, sid_of=list, by_index=list,
               fixed=list, fresh=list, ev=list, band=list, max_da=list, switch=list, specs=list, caps=list, paths=list,
               order=list, last_order=list, last_targets=list, alloc=list, modes=list, phases=list,
               paused=list, one_phase=list, targets=dict, new_memos=dict, dirty=bint, by=list, why=list)
cpdef allocate(tree, sessions, meter, now_s, state=*, cfg=*, site_limit=*)
