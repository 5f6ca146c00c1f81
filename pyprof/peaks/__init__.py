"""Peak FLOP/s: one database of published figures (rows with their sources, as data), CPU and GPU
theoretical / spec / measured / clock-adjusted peaks."""
