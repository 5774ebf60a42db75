"""`python -m services` runs the service named by $SERVICE (the container images' entry point)."""

import os
import runpy
import sys

service = os.environ.get("SERVICE", "")
if not service.isidentifier():
    sys.exit("set SERVICE to one of: frontend auth user product payment order shipping notification")
runpy.run_module(f"services.{service}", run_name="__main__", alter_sys=True)
