"""Who may read and work return requests: the own/all documents rights of sale.order."""

from flectra.exceptions import AccessError
from flectra.tests import new_test_user, tagged

from .return_common import ReturnCase


@tagged("post_install", "-at_install")
class TestReturnRequestAccess(ReturnCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.own_seller = new_test_user(
            cls.env, login="own_docs_seller", groups="sales_team.group_sale_salesman"
        )
        cls.colleague = new_test_user(
            cls.env, login="own_docs_colleague", groups="sales_team.group_sale_salesman"
        )
        cls.all_seller = new_test_user(
            cls.env, login="all_docs_seller", groups="sales_team.group_sale_salesman_all_leads"
        )
        cls.warehouse_user = new_test_user(
            cls.env, login="returns_warehouse", groups="stock.group_stock_user"
        )

    def _request_of(self, salesperson, qty=1):
        order = self._delivered_order()
        order.user_id = salesperson
        return self._submit(
            order, {self.product: qty}, comment="Private note", phone="0470 12 34 56"
        )

    def test_own_documents_seller_sees_only_own_requests(self):
        mine = self._request_of(self.own_seller)
        theirs = self._request_of(self.colleague)
        Request = self.Request.with_user(self.own_seller)
        self.assertEqual(Request.search([("id", "in", (mine | theirs).ids)]), mine)
        Line = self.env["sale.return.request.line"].with_user(self.own_seller)
        self.assertEqual(Line.search([("request_id", "in", (mine | theirs).ids)]).request_id, mine)
        with self.assertRaises(AccessError):
            theirs.with_user(self.own_seller).read(["phone", "comment"])
        with self.assertRaises(AccessError):
            theirs.line_ids.with_user(self.own_seller).read(["quantity"])

    def test_own_documents_seller_cannot_act_on_others_requests(self):
        theirs = self._request_of(self.colleague)
        for action in ("action_approve", "action_cancel"):
            with self.assertRaises(AccessError, msg=action):
                getattr(theirs.with_user(self.own_seller), action)()
        with self.assertRaises(AccessError):
            theirs.with_user(self.own_seller).action_reject("Not mine to judge")
        self.assertEqual(theirs.state, "requested")
        self.assertFalse(theirs.picking_ids)

    def test_own_documents_seller_works_own_and_unassigned_requests(self):
        mine = self._request_of(self.own_seller)
        unassigned = self._request_of(self.env["res.users"])
        mine.with_user(self.own_seller).action_approve()
        unassigned.with_user(self.own_seller).action_approve()
        self.assertEqual((mine | unassigned).mapped("state"), ["approved", "approved"])

    def test_responsible_decides_over_the_orders_salesperson(self):
        request = self._request_of(self.colleague)
        request.user_id = self.own_seller
        self.assertEqual(
            self.Request.with_user(self.own_seller).search([("id", "=", request.id)]), request
        )
        self.assertFalse(self.Request.with_user(self.colleague).search([("id", "=", request.id)]))

    def test_all_documents_seller_works_every_request(self):
        theirs = self._request_of(self.colleague)
        theirs.with_user(self.all_seller).action_approve()
        self.assertEqual(theirs.state, "approved")

    def test_warehouse_user_reads_every_request_but_changes_none(self):
        request = self._request_of(self.colleague)
        as_warehouse = request.with_user(self.warehouse_user)
        self.assertEqual(as_warehouse.read(["state"])[0]["state"], "requested")
        self.assertTrue(as_warehouse.line_ids.read(["quantity"]))
        with self.assertRaises(AccessError):
            as_warehouse.action_approve()
        self.assertEqual(request.state, "requested")
