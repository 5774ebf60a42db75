from services.auth.app import build_app
from services.auth.settings import Settings
from services.kit.serve import serve

serve(build_app, Settings)
