"""What `make image-test` prints at the end, gathered while it runs: image sizes, the purchases, peak memory
per container against its limit and the options derived per service (tests/containers/conftest.py prints it).
"""

from __future__ import annotations

from typing import Any

REPORT: dict[str, Any] = {"sizes": {}, "purchases": [], "memory": {}, "overrides": {}}
