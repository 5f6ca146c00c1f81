#include "range_profiler.h"
