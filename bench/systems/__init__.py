"""One module per system; each maps workload names to an idiomatic implementation.

Every module offers ``WORKLOADS`` (name -> function of the size N returning the value the
runner validates) and ``measure(name, n, warmup, procs)`` returning ``(value, seconds)``,
timed inside the system's own runtime (loop or scheduler already started).
"""
