"""The shop's shared JSON contracts: the request bodies more than one service takes or sends.

Services never import each other; what two of them exchange is defined once here (JSON) or in
`services/protos/` (gRPC), as Online Boutique keeps its protos apart from its services. Each model has ONE
set of limits, the strictest the checkout needs, so nothing one service accepts is refused by the next:

- `Address` (address.py): user's address book, order's checkout, shipping's quotes and shipments, the
  frontend's checkout form;
- `CardIn` (card.py): order's checkout, payment's charges, the frontend's checkout form;
- `CheckoutIn`, `CartItemIn` (shop.py): what the frontend sends to order.
"""

from services.contracts.address import Address, SavedAddress
from services.contracts.card import CardIn
from services.contracts.shop import CartItemIn, CheckoutIn

__all__ = ["Address", "CardIn", "CartItemIn", "CheckoutIn", "SavedAddress"]
