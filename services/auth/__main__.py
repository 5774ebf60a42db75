import sys

from services.auth.app import build_app
from services.auth.keys import SigningKeyError
from services.auth.settings import Settings
from services.kit.serve import serve

try:
    serve(build_app, Settings)
except SigningKeyError as exc:  # a bad key is a configuration error: say why, no traceback
    sys.exit(f"auth cannot start: {exc}")
