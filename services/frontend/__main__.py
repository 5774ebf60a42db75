from services.frontend.app import build_app
from services.frontend.settings import Settings
from services.kit.serve import serve

serve(build_app, Settings)
