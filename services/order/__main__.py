from services.kit.serve import serve
from services.order.app import build_app
from services.order.settings import Settings

serve(build_app, Settings)
