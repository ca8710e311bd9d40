"""The demo's clock: seconds per day and hour, and when in the day people read (impressions and searches)."""
from __future__ import annotations

import numpy as np

DAY = 86400.0
HOUR = 3600.0
#: Relative impression volume per hour of day (UTC): quiet nights, morning and evening peaks.
HOUR_WEIGHTS = np.array([0.4, 0.3, 0.25, 0.25, 0.3, 0.5, 0.9, 1.4, 1.7, 1.6, 1.4, 1.3,
                         1.3, 1.2, 1.1, 1.1, 1.1, 1.2, 1.3, 1.4, 1.4, 1.2, 0.9, 0.6])
