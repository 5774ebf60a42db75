from services.kit.serve import serve
from services.user.app import build_app
from services.user.settings import Settings

serve(build_app, Settings)
