"""`python -m services.product` runs the product service (HTTP on HOST:PORT, gRPC on HOST:GRPC_PORT)."""

from services.kit.serve import serve
from services.product.app import build_app
from services.product.settings import Settings

serve(build_app, Settings)
