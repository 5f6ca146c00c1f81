// Placeholder: filled in by the libhooks work (issue 3/4).
#pragma once
