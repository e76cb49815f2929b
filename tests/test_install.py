"""What installing the add-on brings, and what an upgrade leaves alone."""

from datetime import timedelta

from flectra import fields
from flectra.tests import tagged

from ..hooks import backfill_cart_last_activity
from .common import OrderHandlingCase


@tagged("post_install", "-at_install")
class TestInstall(OrderHandlingCase):
    def _dependencies(self, module_name):
        """Every module that installing ``module_name`` installs, recursively."""
        Module = self.env["ir.module.module"]
        todo, seen = [module_name], set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            module = Module.search([("name", "=", name)])
            todo.extend(module.dependencies_id.mapped("name"))
        return seen

    def test_a_production_install_brings_no_test_acquirer(self):
        needed = self._dependencies("website_sale_order_handling")
        self.assertIn("payment_transfer", needed)
        for test_only in ("payment_test", "payment_stripe"):
            self.assertNotIn(test_only, needed)

    def _cart_without_activity(self):
        cart = self._create_web_order()
        self.env["base"].flush()
        self.env.cr.execute(
            "UPDATE sale_order SET cart_last_activity = NULL, write_date = %s WHERE id = %s",
            [fields.Datetime.now() - timedelta(days=3), cart.id],
        )
        cart.invalidate_cache(["cart_last_activity", "write_date"])
        return cart

    def test_upgrade_leaves_cart_data_alone(self):
        """sale.order.init() runs at every upgrade: index DDL only, no data work."""
        cart = self._cart_without_activity()
        self.env["sale.order"].init()
        cart.invalidate_cache(["cart_last_activity"])
        self.assertFalse(cart.cart_last_activity)

    def test_first_install_gives_old_carts_their_last_change_as_activity(self):
        cart = self._cart_without_activity()
        backend_quote = self.env["sale.order"].create(
            {
                "partner_id": self.customer.id,
                "order_line": [(0, 0, {"product_id": self.product.id})],
            }
        )
        self.env["base"].flush()
        backfill_cart_last_activity(self.env.cr)
        (cart | backend_quote).invalidate_cache(["cart_last_activity"])
        self.assertEqual(cart.cart_last_activity, cart.write_date)
        self.assertFalse(backend_quote.cart_last_activity, "only web carts")
