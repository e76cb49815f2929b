"""One smoke test per layer, proving the harness end to end on real Flectra."""

from flectra.tests import tagged

from .common import OrderHandlingCase, OrderHandlingHttpCase


@tagged("post_install", "-at_install")
class TestSmokeModel(OrderHandlingCase):
    def test_confirming_a_web_order_creates_its_delivery(self):
        order = self._create_web_order(lines=[(self.product, 3)])
        self.assertEqual(order.state, "draft")
        order.action_confirm()
        self.assertEqual(order.state, "sale")
        self.assertEqual(len(order.picking_ids), 1)
        self.assertEqual(order.picking_ids.move_lines.product_uom_qty, 3)

    def test_to_confirm_menu_opens_under_website_orders(self):
        menu = self.env.ref("website_sale_order_handling.sale_order_menu_to_confirm")
        self.assertEqual(menu.parent_id, self.env.ref("website_sale.menu_orders"))


@tagged("post_install", "-at_install")
class TestSmokeHttp(OrderHandlingHttpCase):
    def test_shop_page_lists_published_products(self):
        self.env["product.product"].create(
            {"name": "Smoke Test Teapot", "list_price": 12.0, "is_published": True}
        )
        response = self.url_open("/shop?search=Teapot")
        self.assertEqual(response.status_code, 200)
        self.assertIn("Smoke Test Teapot", response.text)

    def test_shop_tour_in_chromium(self):
        self.env["product.product"].create(
            {"name": "Tour Test Kettle", "list_price": 20.0, "is_published": True}
        )
        self.start_tour("/shop?search=Kettle", "wsoh_shop_smoke")
