from . import sale_return_report
from . import website_cart_recovery_report
from . import sale_return_slip
