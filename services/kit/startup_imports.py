"""What a service does not import: imported first by `services.kit`, before any library.

httpx imports its command-line client (`httpx._main`: click, rich, pygments) whenever those are installed,
as they are in the dev virtualenv (through textual and pytest): 3.3 MB of every service's idle memory for a
program no service runs (docs/performance.md). An entry of None in `sys.modules` makes that one import fail
at once, and httpx then leaves its client out, as it does in the images, where rich is not installed.
"""

from __future__ import annotations

import sys

NOT_IMPORTED = ("httpx._main",)

for _name in NOT_IMPORTED:
    sys.modules.setdefault(_name, None)  # type: ignore[arg-type]
