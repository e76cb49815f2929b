{
    "name": "eCommerce Order Handling",
    "summary": "Web order queues and assignment, automatic abandoned-cart "
    "reminders, online returns and refunds from the order",
    "version": "2.0.1.1.0",
    "category": "Website/Website",
    "license": "LGPL-3",
    "author": "website_sale_order_handling contributors",
    "website": "https://github.com/website-sale-order-handling",
    "depends": [
        "website_sale",
        "sale_stock",
        "payment",
        "payment_transfer",
        # Tests pay with payment_test. Stripe refunds need payment_stripe, which is
        # not a dependency: its checkout script needs the internet.
        "payment_test",
        "portal",
        # Phone numbers on the return form are validated with phonenumbers through it.
        "phone_validation",
        # Abandoned-cart reminders skip products that are out of stock.
        "website_sale_stock",
    ],
    "data": [
        "security/security.xml",
        "security/ir.model.access.csv",
        "security/return_security.xml",
        "data/payment_acquirer_data.xml",
        "data/mail_template_data.xml",
        "data/mail_template_refund.xml",
        "data/ir_cron_data.xml",
        "data/return_sequence_data.xml",
        "data/return_reason_data.xml",
        "data/return_mail_template_data.xml",
        "views/res_config_settings_views.xml",
        "views/sale_order_views.xml",
        "views/sale_order_refund_views.xml",
        "views/payment_views.xml",
        "views/website_cart_reminder_views.xml",
        "views/cart_recovery_templates.xml",
        "views/return_request_views.xml",
        "views/return_settings_views.xml",
        "views/portal_return_templates.xml",
        "views/menus.xml",
        "views/assets.xml",
    ],
    "demo": [
        "demo/shop_demo.xml",
        "demo/cart_reminder_demo.xml",
        "demo/return_demo.xml",
        "demo/refund_demo.xml",
    ],
}
