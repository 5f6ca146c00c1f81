#include "libhooks.h"
