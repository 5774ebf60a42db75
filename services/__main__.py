"""`python -m services` runs the service named by $SERVICE (the container images' entry point)."""

import os
import runpy
import sys

from services.topology import SERVICES

service = os.environ.get("SERVICE", "")
if service not in SERVICES:
    sys.exit(f"set SERVICE to one of: {' '.join(SERVICES)} (got {service!r})")
runpy.run_module(f"services.{service}", run_name="__main__", alter_sys=True)
