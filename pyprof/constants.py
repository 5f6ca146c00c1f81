"""Units and conventions used everywhere in pyprof (one place for 8.64e19 and friends)."""

#: Seconds in a day.
SECONDS_PER_DAY = 86_400.0
#: One petaflop/s-day in FLOP: 1e15 FLOP/s sustained for one day.
PFS_DAY_FLOP = 1e15 * SECONDS_PER_DAY  # 8.64e19
#: One teraflop/s-day in FLOP.
TFS_DAY_FLOP = 1e12 * SECONDS_PER_DAY  # 8.64e16
#: One petaFLOP (the "PF" of "AI and compute": an amount, not a rate).
PETA = 1e15
#: FLOP per multiply-add (multiplies and adds count separately).
FLOP_PER_MAC = 2
#: Method 1: forward + backward costs about three forward passes.
FORWARD_BACKWARD_FACTOR = 3
#: Method 2's published utilization assumptions ("AI and compute", 2018).
ASSUMED_UTILIZATION_GPU = 0.33
ASSUMED_UTILIZATION_CPU = 0.17
#: Full activation checkpointing recomputes the forward once: HFU = 4/3 x MFU (PaLM appendix B).
