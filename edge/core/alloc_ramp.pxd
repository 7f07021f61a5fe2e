# C types for alloc_ramp.py when Cython compiles it on CPython (see allocation.pxd).
import cython

@cython.locals(i=Py_ssize_t, keys=list, min_da=list, limits=dict, sent=dict, changed=dict)
cpdef ramp_all(layout, list by_index, state, now_s, cfg, list prev_by_index=*)
