#include "pm_sampler.h"
