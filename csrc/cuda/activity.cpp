#include "activity.h"
