from services.kit.serve import serve
from services.shipping.app import build_app
from services.shipping.settings import Settings

serve(build_app, Settings)
