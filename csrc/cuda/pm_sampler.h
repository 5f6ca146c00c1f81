// Placeholder: filled in by the pm_sampler work (issue 3/4).
#pragma once
