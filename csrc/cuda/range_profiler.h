// Placeholder: filled in by the range_profiler work (issue 3/4).
#pragma once
