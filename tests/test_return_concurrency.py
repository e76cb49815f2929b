"""Two return forms submitted at the same moment for the same products, with
real transactions: data is committed by separate cursors, each submission runs
in its own cursor and thread, and everything is deleted afterwards."""

import threading
import uuid

from psycopg2.extensions import TransactionRollbackError

from flectra import SUPERUSER_ID, api
from flectra.exceptions import UserError
from flectra.tests import tagged

from .committed_common import CommittedCase


@tagged("post_install", "-at_install")
class TestReturnRequestRace(CommittedCase):
    def setUp(self):
        super().setUp()
        self.ids = self.commit(self._create_data, context={"tracking_disable": True})

    def _create_data(self, env):
        website = self.track(
            env["website"].create(
                {
                    "name": "Race Shop",
                    "allow_online_returns": True,
                    "return_window_days": 30,
                }
            )
        )
        product = self.track(
            env["product.product"].create(
                {"name": "Race Kettle", "type": "consu", "list_price": 20.0, "is_published": True}
            )
        )
        partner = self.track(
            env["res.partner"].create({"name": "Race Buyer", "email": "race@example.com"})
        )
        order = self.track(
            env["sale.order"].create(
                {
                    "partner_id": partner.id,
                    "website_id": website.id,
                    "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 2})],
                }
            )
        )
        order.action_confirm()
        for move in order.picking_ids.move_lines:
            move.quantity_done = move.product_uom_qty
        order.picking_ids._action_done()
        return {
            "website": website.id,
            "product": product.id,
            "partner": partner.id,
            "order": order.id,
            "line": order.order_line.id,
            "pickings": order.picking_ids.ids,
        }

    def _remove_committed(self, env):
        # A delivered order cannot be unlinked: it goes by SQL, with what was
        # made of it; the product, partner and website are unlinked after.
        if self.tracked(env, "sale.order"):
            ids, cr = self.ids, env.cr
            cr.execute("DELETE FROM sale_return_request WHERE order_id = %s", (ids["order"],))
            cr.execute(
                "DELETE FROM mail_message WHERE (model = 'sale.order' AND res_id = %s)"
                " OR (model = 'stock.picking' AND res_id IN %s)",
                (ids["order"], tuple(ids["pickings"])),
            )
            cr.execute("DELETE FROM stock_valuation_layer WHERE product_id = %s", (ids["product"],))
            cr.execute(
                "DELETE FROM stock_move_line WHERE picking_id IN %s", (tuple(ids["pickings"]),)
            )
            cr.execute("DELETE FROM stock_move WHERE picking_id IN %s", (tuple(ids["pickings"]),))
            cr.execute("DELETE FROM stock_picking WHERE id IN %s", (tuple(ids["pickings"]),))
            cr.execute("DELETE FROM sale_order_line WHERE order_id = %s", (ids["order"],))
            cr.execute("DELETE FROM sale_order WHERE id = %s", (ids["order"],))
        return super()._remove_committed(env)

    def _submit(self, barrier, outcomes):
        with api.Environment.manage(), self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            order = env["sale.order"].browse(self.ids["order"])
            # The visitor's request reads the order (access check, form) first:
            # its snapshot is taken before the other submission commits.
            order.order_line.mapped("product_uom_qty")
            reason = env.ref("website_sale_order_handling.return_reason_damaged")
            barrier.wait()
            try:
                env["sale.return.request"]._create_from_portal(
                    order,
                    {self.ids["line"]: {"quantity": 2, "reason": reason}},
                    token=uuid.uuid4().hex,
                )
                cr.commit()  # pylint: disable=invalid-commit
                outcomes.append("created")
            except TransactionRollbackError:
                # The HTTP layer retries such a request; the retry sees the first one.
                cr.rollback()
                outcomes.append("retry")
            except UserError:
                cr.rollback()
                outcomes.append("refused")

    def test_two_submissions_for_the_same_products_create_one_request(self):
        barrier, outcomes = threading.Barrier(2), []
        threads = [
            threading.Thread(target=self._submit, args=(barrier, outcomes)) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        self.assertEqual(sorted(outcomes)[0], "created", outcomes)
        self.assertEqual(outcomes.count("created"), 1, outcomes)
        with self.registry.cursor() as cr:
            cr.execute(
                """SELECT COALESCE(SUM(l.quantity), 0) FROM sale_return_request_line l
                     JOIN sale_return_request r ON r.id = l.request_id WHERE r.order_id = %s""",
                (self.ids["order"],),
            )
            self.assertEqual(cr.fetchone()[0], 2, "no more requested than delivered")
