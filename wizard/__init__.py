from . import sale_return_request_reject
from . import sale_order_refund_wizard
