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
        "portal",
    ],
    "data": [
        "security/ir.model.access.csv",
        "views/sale_order_views.xml",
        "views/menus.xml",
        "views/assets.xml",
    ],
    "demo": [
        "demo/shop_demo.xml",
    ],
}
