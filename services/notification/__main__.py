from services.kit.serve import serve
from services.notification.app import build_app
from services.notification.settings import Settings

serve(build_app, Settings)
