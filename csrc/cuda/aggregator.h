// Placeholder: filled in by the aggregator work (issue 3/4).
#pragma once
