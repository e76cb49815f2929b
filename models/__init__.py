from . import mail_mail
from . import res_config_settings
from . import res_partner
from . import sale_order
from . import sale_order_line
from . import website
from . import website_cart_reminder
