import importlib.util
import os
import re

from flectra.modules.module import get_module_path
from flectra.tests import HttpCase, SavepointCase
from flectra.tests.common import new_test_user

# Chromium ignores Flectra's "1366x768": it wants a comma, else pages render at 800x600.
BROWSER_SIZE = "1366,768"
# The website editor imports Google Fonts; offline, the request hangs the page
# load until the tour times out. Blocking them makes the request fail at once.
BLOCKED_URLS = ["*fonts.googleapis.com*", "*fonts.gstatic.com*"]


def load_migration(version, filename):
    """The migration script ``migrations/<version>/<filename>`` as a module,
    to run its ``migrate(cr, version)`` on the test's tables."""
    path = os.path.join(
        get_module_path("website_sale_order_handling"), "migrations", version, filename
    )
    name = "wsoh_migration_%s_%s" % (version.replace(".", "_"), filename[:-3].replace("-", "_"))
    spec = importlib.util.spec_from_file_location(name, path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


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
                (0, 0, {"product_id": product.id, "product_uom_qty": qty}) for product, qty in lines
            ],
        }
        vals.update(values)
        return cls.env["sale.order"].create(vals)


class OrderHandlingHttpCase(HttpCase):
    """HttpCase with a browser that works on this offline, headless machine,
    and helpers to drive the shop the way a customer's browser does."""

    browser_size = BROWSER_SIZE

    def browser_js(self, url_path, code, ready="", login=None, timeout=60, **kw):
        """Flectra's, then the browser leaves the page. A page left open goes
        on sending requests (product page RPCs, the bus) into the next tests
        of the class, on the transaction they share with the test thread: a
        request thread can then fail, or wait for ever and keep the server
        from exiting after the last test."""
        try:
            return super().browser_js(
                url_path, code, ready=ready, login=login, timeout=timeout, **kw
            )
        finally:
            if self.browser:
                self.browser.navigate_to("about:blank", wait_stop=True)
                self._wait_remaining_requests()

    def _new_portal_customer(self, login, **partner_values):
        """A portal user whose address is complete enough to check out."""
        user = new_test_user(
            self.env,
            login=login,
            groups="base.group_portal",
            name=login.title(),
            email="%s@example.com" % login,
            password=login,
        )
        user.partner_id.write(
            dict(
                {
                    "street": "1 Test Street",
                    "city": "Brussels",
                    "zip": "1000",
                    "country_id": self.env.ref("base.be").id,
                    "phone": "+32 2 555 12 12",
                },
                **partner_values,
            )
        )
        return user

    def _csrf_token(self, url="/shop"):
        page = self.url_open(url)
        return re.search(r'csrf_token: "([^"]+)"', page.text).group(1)

    def _json_call(self, url, **params):
        response = self.opener.post(
            "http://127.0.0.1:%s%s" % (self._http_port(), url),
            json={"jsonrpc": "2.0", "method": "call", "params": params},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    @staticmethod
    def _http_port():
        from flectra.tools import config

        return config["http_port"]

    def _add_to_cart(self, product, qty=1):
        """POST /shop/cart/update as the product page's form does."""
        response = self.url_open(
            "/shop/cart/update",
            data={"product_id": product.id, "add_qty": qty, "csrf_token": self._csrf_token()},
        )
        self.env.cache.invalidate()
        return response

    def _last_cart(self, partner):
        return self.env["sale.order"].search(
            [("partner_id", "=", partner.id), ("website_id", "!=", False)], order="id desc", limit=1
        )

    def _checkout_with(self, order, acquirer):
        """Confirm the address, pick the acquirer, and come back from it as
        the payment form does: /shop/confirm_order, the transaction JSON
        route, the acquirer's feedback URL, then /shop/payment/validate."""
        self.url_open("/shop/confirm_order")
        self._json_call("/shop/payment/transaction/", acquirer_id=acquirer.id)
        tx = order.transaction_ids.sorted("id")[-1:]
        if acquirer.provider == "transfer":
            self.url_open(
                "/payment/transfer/feedback",
                data={
                    "reference": tx.reference,
                    "amount": tx.amount,
                    "currency": tx.currency_id.name,
                },
            )
        response = self.url_open("/shop/payment/validate")
        # The requests changed records behind this environment's back.
        self.env.cache.invalidate()
        return response

    @classmethod
    def start_browser(cls):
        res = super().start_browser()
        cls.browser._websocket_send("Network.enable")
        cls.browser._websocket_send("Network.setBlockedURLs", params={"urls": BLOCKED_URLS})
        return res
