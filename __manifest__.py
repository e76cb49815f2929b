{
    "name": "eCommerce Order Handling",
    "summary": "Web order queues and assignment, automatic abandoned-cart "
    "reminders, online returns and refunds from the order",
    "version": "2.0.1.0.0",
    "category": "Website/Website",
    "license": "LGPL-3",
    "author": "website_sale_order_handling contributors",
    "website": "https://github.com/website-sale-order-handling",
    "depends": [
        "website_sale",
        "sale_stock",
        "payment",
        "payment_transfer",
        # Refund support is declared for these providers, and tests pay with payment_test.
        "payment_test",
        "payment_stripe",
        "portal",
        # Phone numbers on the return form are validated with phonenumbers through it.
        "phone_validation",
        # Abandoned-cart reminders skip products that are out of stock.
        "website_sale_stock",
    ],
    "data": [
        "security/ir.model.access.csv",
        "views/sale_order_views.xml",
        "views/menus.xml",
        "views/assets.xml",
        # Refunds from the order (issue #6).
        "security/security.xml",
        "data/mail_template_refund.xml",
        "views/payment_views.xml",
        "views/sale_order_refund_views.xml",
    ],
    "demo": [
        "demo/shop_demo.xml",
    ],
}
