from . import payment_acquirer
from . import payment_transaction
from . import sale_order
