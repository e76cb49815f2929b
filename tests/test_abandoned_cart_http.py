from datetime import timedelta

from flectra import fields
from flectra.addons.base.tests.common import HttpCaseWithUserPortal
from flectra.tests import tagged

from .common import OrderHandlingHttpCase


@tagged("post_install", "-at_install")
class TestAbandonedCartLinks(OrderHandlingHttpCase):
    def setUp(self):
        super().setUp()
        self.website = self.env["website"].browse(1)
        self.product = self.env["product.product"].create(
            {"name": "Link Test Teapot", "list_price": 25.0, "is_published": True}
        )
        self.customer = self.env["res.partner"].create(
            {"name": "Link Customer", "email": "link.customer@example.com"}
        )
        self.cart = self.env["sale.order"].create(
            {
                "partner_id": self.customer.id,
                "website_id": self.website.id,
                "order_line": [(0, 0, {"product_id": self.product.id, "product_uom_qty": 2})],
            }
        )
        self.cart.cart_last_activity = fields.Datetime.now() - timedelta(hours=5)
        self.website.write({"send_abandoned_cart_email": True, "cart_abandoned_delay": 1.0})
        self.website.abandoned_cart_email_start = fields.Datetime.now() - timedelta(days=1)

    def test_resume_link_of_the_email_restores_the_cart(self):
        self.env["website.abandoned.cart.mailer"]._cron_send_abandoned_cart_email()
        mail = self.env["mail.mail"].search(
            [("res_id", "=", self.cart.id), ("is_cart_reminder", "=", True)]
        )
        self.assertEqual(len(mail), 1)
        resume_path = "/shop/cart?access_token=%s&amp;revive=squash" % self.cart.access_token
        self.assertIn(resume_path, mail.body_html)
        response = self.url_open(resume_path.replace("&amp;", "&"))
        self.assertEqual(response.status_code, 200)
        self.assertIn("Link Test Teapot", response.text)
        self.assertEqual(self.url_open("/shop/cart?access_token=wrong-token").status_code, 404)


@tagged("post_install", "-at_install")
class TestFlectraCartRecoveryTour(OrderHandlingHttpCase, HttpCaseWithUserPortal):
    """website_sale's own manual recovery tour, with automatic e-mails switched on."""

    def test_website_sale_cart_recovery_tour(self):
        self.env["website"].browse(1).send_abandoned_cart_email = True
        self.env["product.product"].create(
            {"name": "Acoustic Bloc Screens", "list_price": 2950.0, "website_published": True}
        )
        self.start_tour("/", "shop_cart_recovery", login="portal")
