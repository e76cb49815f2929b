from . import product_category
from . import product_template
from . import res_config_settings
from . import sale_order
from . import sale_return_reason
from . import sale_return_request
from . import stock_picking
from . import website
