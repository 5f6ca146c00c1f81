"""The host CPU as a source: its facts (ISA, cores, clock) and its FP hardware counters (perf_event)."""
