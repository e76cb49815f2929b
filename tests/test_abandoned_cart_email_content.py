"""The abandoned cart e-mail sells: pictures, prices and total, as mail clients
show them, within the batch renderer's budget of SQL queries."""

import base64
import re
from datetime import timedelta

from flectra.tests import tagged
from flectra.tools import file_open

from .abandoned_cart_common import AbandonedCartCase
from .common import OrderHandlingHttpCase

# The budget of the abandoned cart cron, measured by bench/bench_abandoned_cart.py.
MAX_QUERIES_PER_CART = 3


def _image_sources(html):
    return re.findall(r'<img[^>]*\ssrc="([^"]*)"', html)


@tagged("post_install", "-at_install")
class TestAbandonedCartEmailContent(AbandonedCartCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with file_open("product/static/img/product_chair.png", "rb") as image:
            chair_image = base64.b64encode(image.read())
        cls.chair = cls.env["product.product"].create(
            {
                "name": "Test Office Chair",
                "type": "consu",
                "list_price": 120.0,
                "is_published": True,
                "taxes_id": [(6, 0, [])],
                "image_1920": chair_image,
            }
        )
        # The shop would pick a pricelist by the customer's country: fix it.
        cls.usd_pricelist = cls.env["product.pricelist"].create(
            {
                "name": "Test USD",
                "currency_id": cls.env.ref("base.USD").id,
            }
        )

    @classmethod
    def _abandoned_cart(cls, hours_ago=2.0, **kwargs):
        kwargs.setdefault("pricelist_id", cls.usd_pricelist.id)
        return super()._abandoned_cart(hours_ago=hours_ago, **kwargs)

    def _emailed_body(self, cart):
        self._run_cron()
        mail = self._reminder_mails(cart)
        self.assertEqual(len(mail), 1)
        return mail.body_html

    def test_each_line_shows_image_name_quantity_and_price_then_the_total(self):
        cart = self._abandoned_cart(lines=[(self.product, 2), (self.chair, 1)])
        base_url = cart.get_base_url()
        body = self._emailed_body(cart)
        for name in ("Test Storable Lamp", "Test Office Chair"):
            self.assertIn(name, body)
        # Quantity and unit price, then the line's price, in the order's currency.
        self.assertIn("Qty: 2 &#215; $\N{NO-BREAK SPACE}50.00", body.replace("\u00d7", "&#215;"))
        self.assertIn("Qty: 1 &#215; $\N{NO-BREAK SPACE}120.00", body.replace("\u00d7", "&#215;"))
        self.assertIn("$\N{NO-BREAK SPACE}100.00", body)
        self.assertIn("Total", body)
        self.assertEqual(cart.amount_total, 220.0)
        self.assertIn("$\N{NO-BREAK SPACE}220.00", body)
        sources = _image_sources(body)
        for product in (self.product, self.chair):
            self.assertIn(
                "%s/web/image/product.product/%d/image_128" % (base_url, product.id), sources
            )
        self.assertIn("%s/web/image/website/%d/logo" % (base_url, self.website.id), sources)
        # The links the e-mail had before are still there.
        self.assertIn("/shop/cart?access_token=%s&amp;revive=squash" % cart.access_token, body)
        self.assertIn(
            "/shop/cart/unsubscribe?website=%s&amp;email=test.customer%%40example.com"
            % self.website.id,
            body,
        )

    def test_only_inline_styles_and_absolute_images_that_fit_a_phone(self):
        cart = self._abandoned_cart(lines=[(self.product, 1), (self.chair, 1)])
        body = self._emailed_body(cart)
        lowered = body.lower()
        for forbidden in ("<style", "<script", "<link", "javascript:", "cid:", "data:image"):
            self.assertNotIn(forbidden, lowered)
        sources = _image_sources(body)
        self.assertEqual(len(sources), 3, "the logo and one picture per line")
        for source in sources:
            self.assertRegex(source, r"^https?://[^/]+/", "mail clients need absolute image links")
        # Product pictures have a fixed size; the layout is a fluid table of at most 600px.
        self.assertEqual(len(re.findall(r'<img[^>]*\swidth="64"', body)), 2)
        self.assertIn("max-width: 600px", body)
        self.assertRegex(body, r'<table[^>]*width="100%"')

    def test_images_and_logo_use_the_website_domain(self):
        self.website.domain = "https://shop.example.com"
        cart = self._abandoned_cart(lines=[(self.product, 1)])
        body = self._emailed_body(cart)
        sources = _image_sources(body)
        self.assertTrue(sources)
        for source in sources:
            self.assertTrue(source.startswith("https://shop.example.com/"), source)
        self.assertIn("https://shop.example.com/shop/cart?access_token=", body)

    def test_a_product_without_image_gets_the_placeholder_route(self):
        self.assertFalse(self.product.image_128)
        cart = self._abandoned_cart(lines=[(self.product, 1)])
        body = self._emailed_body(cart)
        self.assertIn(
            "%s/web/image/product.product/%d/image_128" % (cart.get_base_url(), self.product.id),
            _image_sources(body),
        )
        self.assertIn("Test Storable Lamp", body)

    def test_product_names_are_html_escaped(self):
        bold = self.env["product.product"].create(
            {
                "name": "Desk <b>Bold</b> & Co",
                "type": "consu",
                "list_price": 15.0,
                "is_published": True,
                "taxes_id": [(6, 0, [])],
            }
        )
        cart = self._abandoned_cart(lines=[(bold, 1)])
        body = self._emailed_body(cart)
        self.assertNotIn("<b>Bold</b>", body)
        self.assertIn("Desk &lt;b&gt;Bold&lt;/b&gt; &amp; Co", body)

    def test_prices_follow_the_shop_tax_display(self):
        tax = self.env["account.tax"].create(
            {
                "name": "Test VAT 20%",
                "amount": 20.0,
                "amount_type": "percent",
                "type_tax_use": "sale",
            }
        )
        self.chair.taxes_id = tax
        cart = self._abandoned_cart(lines=[(self.chair, 1)])
        self.assertEqual(cart.amount_total, 144.0)
        config = self.env["ir.config_parameter"].sudo()
        config.set_param("account.show_line_subtotals_tax_selection", "tax_excluded")
        body = self._emailed_body(cart)
        self.assertIn("Qty: 1 &#215; $\N{NO-BREAK SPACE}120.00", body.replace("\u00d7", "&#215;"))
        for label, amount in (("Subtotal", "120.00"), ("Taxes", "24.00"), ("Total", "144.00")):
            self.assertRegex(
                body, r"%s</td>\s*<td[^>]*>\$\N{NO-BREAK SPACE}%s<" % (label, re.escape(amount))
            )

        config.set_param("account.show_line_subtotals_tax_selection", "tax_included")
        other = self._abandoned_cart(
            partner=self.env["res.partner"].create({"name": "Other", "email": "other@example.com"}),
            lines=[(self.chair, 1)],
        )
        body = self._emailed_body(other)
        self.assertIn("Qty: 1 &#215; $\N{NO-BREAK SPACE}144.00", body.replace("\u00d7", "&#215;"))
        self.assertNotIn("Subtotal", body)

    def test_shipping_is_shown_apart_so_that_the_amounts_add_up(self):
        cart = self._abandoned_cart(lines=[(self.chair, 1)])
        if "is_delivery" not in cart.order_line:
            self.skipTest("delivery is not installed")
        carrier_product = self.env["product.product"].create(
            {
                # Published: the engine skips carts holding an unpublished product.
                "name": "Test Courier",
                "type": "service",
                "list_price": 7.0,
                "taxes_id": [(6, 0, [])],
                "is_published": True,
            }
        )
        self.env["sale.order.line"].create(
            {
                "order_id": cart.id,
                "product_id": carrier_product.id,
                "product_uom_qty": 1,
                "price_unit": 7.0,
                "is_delivery": True,
            }
        )
        cart.cart_last_activity = self.now - timedelta(hours=2)
        body = self._emailed_body(cart)
        self.assertNotIn("Test Courier", body, "as in the shop's cart, shipping is no product line")
        self.assertRegex(body, r"Delivery</td>\s*<td[^>]*>\$\N{NO-BREAK SPACE}7.00<")
        self.assertRegex(body, r"Total</td>\s*<td[^>]*>\$\N{NO-BREAK SPACE}127.00<")

    def test_amounts_are_in_the_currency_of_the_order(self):
        eur = self.env.ref("base.EUR")
        eur.active = True
        pricelist = self.env["product.pricelist"].create(
            {"name": "Test EUR", "currency_id": eur.id}
        )
        cart = self._abandoned_cart(lines=[(self.chair, 1)], pricelist_id=pricelist.id)
        self.assertEqual(cart.currency_id, eur)
        body = self._emailed_body(cart)
        self.assertIn(
            "%s\N{NO-BREAK SPACE}%s" % ("{:.2f}".format(cart.amount_total), eur.symbol), body
        )
        self.assertNotIn("$\N{NO-BREAK SPACE}", body)


@tagged("post_install", "-at_install")
class TestAbandonedCartEmailQueries(AbandonedCartCase):
    """The richer e-mail must not cost the batch renderer queries per cart."""

    def _carts(self, count):
        """``count`` carts of different customers, two different products each."""
        carts = []
        for number in range(count):
            products = self.env["product.product"].create(
                [
                    {
                        "name": "Budget Product %s-%s" % (number, side),
                        "type": "consu",
                        "list_price": 10.0 + side,
                        "is_published": True,
                        "taxes_id": [(6, 0, [])],
                    }
                    for side in (1, 2)
                ]
            )
            partner = self.env["res.partner"].create(
                {
                    "name": "Budget Buyer %s" % number,
                    "email": "budget%s@example.com" % number,
                }
            )
            carts.append(
                self._abandoned_cart(partner=partner, lines=[(product, 1) for product in products])
            )
        return carts

    def _queries_to_email(self, count):
        carts = self._carts(count)
        self.env["base"].flush()
        self.env.cache.invalidate()
        before = self.cr.sql_log_count
        sent = self.env["website.abandoned.cart.mailer"]._send_abandoned_cart_emails(self.website)
        self.env["base"].flush()
        queries = self.cr.sql_log_count - before
        self.assertEqual(sent, count)
        for cart in carts:
            self.assertEmailed(cart)
        return queries

    def test_each_more_cart_costs_at_most_the_budget(self):
        self._queries_to_email(1)  # warm the caches of the registry
        small = self._queries_to_email(4)
        large = self._queries_to_email(16)
        per_cart = (large - small) / 12.0
        self.assertLessEqual(
            per_cart,
            MAX_QUERIES_PER_CART,
            "%.2f queries per e-mailed cart (%d for 4 carts, %d for 16)" % (per_cart, small, large),
        )


@tagged("post_install", "-at_install")
class TestAbandonedCartEmailImages(OrderHandlingHttpCase):
    """The pictures of the e-mail load for anyone: mail clients fetch them without a session."""

    def test_every_image_of_the_email_loads_without_a_session(self):
        website = self.env["website"].browse(1)
        with file_open("product/static/img/product_chair.png", "rb") as image:
            chair = self.env["product.product"].create(
                {
                    "name": "Test Office Chair",
                    "type": "consu",
                    "list_price": 120.0,
                    "is_published": True,
                    "image_1920": base64.b64encode(image.read()),
                }
            )
        plain = self.env["product.product"].create(
            {
                "name": "Test Plain Mug",
                "type": "consu",
                "list_price": 5.0,
                "is_published": True,
            }
        )
        partner = self.env["res.partner"].create(
            {"name": "Image Buyer", "email": "images@example.com"}
        )
        cart = self.env["sale.order"].create(
            {
                "partner_id": partner.id,
                "website_id": website.id,
                "order_line": [
                    (0, 0, {"product_id": product.id, "product_uom_qty": 1})
                    for product in (chair, plain)
                ],
            }
        )
        template = (
            website.cart_reminder_mail_template_id or website._default_cart_reminder_template()
        )
        body = self.env["website.abandoned.cart.mailer"]._render(cart, template)["body_html"][
            cart.id
        ]
        sources = _image_sources(body)
        self.assertEqual(len(sources), 3)
        base_url = cart.get_base_url()
        for source in sources:
            self.assertTrue(source.startswith(base_url + "/"), source)
            response = self.url_open(source[len(base_url) :])
            self.assertEqual(response.status_code, 200, source)
            self.assertTrue(response.headers["Content-Type"].startswith("image/"), source)
            self.assertGreater(len(response.content), 100, source)
