"""pyprof's GPU engine: CUPTI kernel tracer, library-call hooks, NVML sampler, hardware counters and GPU peaks.

Every module here imports on a machine without a GPU, driver or CUPTI; what cannot run says why (a ``reason``
string) instead of raising, so that :func:`pyprof.profile` keeps what it can measure.
"""
