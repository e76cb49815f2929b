from . import website_cart_recovery_report
