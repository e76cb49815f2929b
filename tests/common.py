from flectra.tests import HttpCase, SavepointCase

# Chromium ignores Flectra's "1366x768": it wants a comma, else pages render at 800x600.
BROWSER_SIZE = "1366,768"
# The website editor imports Google Fonts; offline, the request hangs the page
# load until the tour times out. Blocking them makes the request fail at once.
BLOCKED_URLS = ["*fonts.googleapis.com*", "*fonts.gstatic.com*"]


class OrderHandlingCase(SavepointCase):
    """Shared shop data built from scratch: tests never rely on demo data."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        cls.website = cls.env["website"].browse(1)
        cls.company = cls.website.company_id
        cls.warehouse = cls.env["stock.warehouse"].search(
            [("company_id", "=", cls.company.id)], limit=1
        )
        cls.product = cls.env["product.product"].create(
            {
                "name": "Test Storable Lamp",
                "type": "product",
                "list_price": 50.0,
                "is_published": True,
                "invoice_policy": "order",
                "taxes_id": [(6, 0, [])],
            }
        )
        cls.service = cls.env["product.product"].create(
            {
                "name": "Test Setup Service",
                "type": "service",
                "list_price": 10.0,
                "is_published": True,
                "taxes_id": [(6, 0, [])],
            }
        )
        cls.env["stock.quant"]._update_available_quantity(
            cls.product, cls.warehouse.lot_stock_id, 100.0
        )
        cls.customer = cls.env["res.partner"].create(
            {
                "name": "Test Customer",
                "email": "test.customer@example.com",
                "country_id": cls.env.ref("base.be").id,
            }
        )

    @classmethod
    def _create_web_order(cls, partner=None, lines=None, **values):
        """A website order as the shop creates it, with (product, qty) lines."""
        lines = lines or [(cls.product, 1)]
        vals = {
            "partner_id": (partner or cls.customer).id,
            "website_id": cls.website.id,
            "order_line": [
                (0, 0, {"product_id": product.id, "product_uom_qty": qty})
                for product, qty in lines
            ],
        }
        vals.update(values)
        return cls.env["sale.order"].create(vals)


class OrderHandlingHttpCase(HttpCase):
    """HttpCase with a browser that works on this offline, headless machine."""

    browser_size = BROWSER_SIZE

    @classmethod
    def start_browser(cls):
        res = super().start_browser()
        cls.browser._websocket_send("Network.enable")
        cls.browser._websocket_send("Network.setBlockedURLs", params={"urls": BLOCKED_URLS})
        return res
