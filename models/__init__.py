from . import payment_acquirer
from . import res_config_settings
from . import sale_order
from . import stock_picking
from . import website
