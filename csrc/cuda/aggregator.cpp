#include "aggregator.h"
