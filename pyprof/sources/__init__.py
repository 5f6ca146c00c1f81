"""Where measurements come from: the analytic FLOP counter (``flops``), the host CPU (``cpu``) and the CUDA engine
(``cuda``). Sources produce records; they never import accounting or report code."""
