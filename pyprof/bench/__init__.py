"""pyprof's benchmark suite (``pyprof bench``): runner, workloads, models and microbenchmarks, importable as
``pyprof.bench`` so that an installed wheel runs it; the top-level ``bench/`` scripts of a checkout import it too."""
