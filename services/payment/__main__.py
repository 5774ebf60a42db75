from services.kit.serve import serve
from services.payment.app import build_app
from services.payment.settings import Settings

serve(build_app, Settings)
