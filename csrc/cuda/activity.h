// Placeholder: filled in by the activity work (issue 3/4).
#pragma once
