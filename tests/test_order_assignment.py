"""Web orders go to a salesperson: fixed, round robin, or the customer's own."""

import threading

from flectra import api
from flectra.addons.website.tools import MockRequest
from flectra.tests import tagged
from flectra.tests.common import new_test_user

from .committed_common import CommittedCase
from .common import OrderHandlingCase, OrderHandlingHttpCase


@tagged("post_install", "-at_install")
class TestOrderAssignment(OrderHandlingCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.anna = new_test_user(cls.env, login="rr_anna", groups="sales_team.group_sale_salesman")
        cls.bruno = new_test_user(
            cls.env, login="rr_bruno", groups="sales_team.group_sale_salesman"
        )
        cls.carla = new_test_user(
            cls.env, login="rr_carla", groups="sales_team.group_sale_salesman"
        )
        cls.fixed = new_test_user(
            cls.env, login="rr_fixed", groups="sales_team.group_sale_salesman"
        )
        cls.team = cls.env["crm.team"].create(
            {
                "name": "Round Robin Team",
                "member_ids": [(6, 0, (cls.anna | cls.bruno | cls.carla).ids)],
            }
        )
        cls.website = cls.env["website"].create(
            {"name": "Assignment Shop", "salesteam_id": cls.team.id, "salesperson_id": cls.fixed.id}
        )
        cls.partner = cls.env["res.partner"].create({"name": "Walk-in", "email": "w@example.com"})

    def _new_cart_salesperson(self, partner=None, website=None):
        """Create a cart the way the shop does, and return its salesperson."""
        website = website or self.website
        with MockRequest(self.env, website=website):
            values = website._prepare_sale_order_values(
                partner or self.partner, self.env["product.pricelist"].search([], limit=1)
            )
        return self.env["res.users"].browse(values["user_id"])

    def test_new_web_cart_queues_the_salesperson_notification(self):
        """The "assigned to you" e-mail of a new cart goes through the mail
        queue: the customer's add-to-cart never waits for SMTP (issue 13)."""
        self.anna.notification_type = "email"
        # As the shop creates carts: with the mail features the tests turn off.
        orders = self.env["sale.order"].with_context(tracking_disable=False)
        cart = orders.create(
            {"partner_id": self.partner.id, "website_id": self.website.id, "user_id": self.anna.id}
        )
        mails = self.env["mail.mail"].search(
            [
                ("model", "=", "sale.order"),
                ("res_id", "=", cart.id),
                ("recipient_ids", "in", self.anna.partner_id.ids),
            ]
        )
        self.assertEqual(mails.mapped("state"), ["outgoing"])

    def test_fixed_mode_keeps_the_website_salesperson(self):
        self.assertEqual(self.website.order_assignment_mode, "fixed")
        self.assertEqual(self._new_cart_salesperson(), self.fixed)
        self.assertEqual(self._new_cart_salesperson(), self.fixed)

    def test_round_robin_gives_each_member_a_turn(self):
        self.website.order_assignment_mode = "round_robin"
        got = [self._new_cart_salesperson() for _ in range(6)]
        self.assertEqual(got[:3], got[3:], "the cycle repeats")
        self.assertEqual(set(u.id for u in got[:3]), set((self.anna | self.bruno | self.carla).ids))

    def test_round_robin_skips_archived_and_removed_members(self):
        self.website.order_assignment_mode = "round_robin"
        self.bruno.active = False
        self.team.member_ids = [(3, self.carla.id)]
        got = {self._new_cart_salesperson() for _ in range(4)}
        self.assertEqual(got, {self.anna})

    def test_customer_first_keeps_the_customers_salesperson(self):
        self.website.order_assignment_mode = "customer_first"
        own = new_test_user(self.env, login="rr_own", groups="sales_team.group_sale_salesman")
        self.partner.user_id = own
        self.assertEqual(self._new_cart_salesperson(), own)
        contact = self.env["res.partner"].create({"name": "Buyer", "parent_id": self.partner.id})
        self.assertEqual(self._new_cart_salesperson(contact), own, "the company's salesperson")

    def test_customer_first_falls_back_to_round_robin(self):
        self.website.order_assignment_mode = "customer_first"
        archived = new_test_user(self.env, login="rr_gone", groups="sales_team.group_sale_salesman")
        archived.active = False
        self.partner.user_id = archived
        got = {self._new_cart_salesperson() for _ in range(3)}
        self.assertEqual(got, set(self.anna | self.bruno | self.carla))

    def test_empty_team_falls_back_to_website_salesperson_then_nobody(self):
        self.website.order_assignment_mode = "round_robin"
        self.team.member_ids = [(5,)]
        self.assertEqual(self._new_cart_salesperson(), self.fixed)
        self.website.salesperson_id = False
        self.assertFalse(self._new_cart_salesperson())

    def test_checkout_with_empty_team_still_creates_the_order(self):
        self.website.write({"order_assignment_mode": "round_robin", "salesperson_id": False})
        self.team.member_ids = [(5,)]
        with MockRequest(self.env, website=self.website):
            order = self.website.with_context(website_id=self.website.id).sale_get_order(
                force_create=True
            )
        self.assertTrue(order)
        self.assertFalse(order.user_id)
        self.assertEqual(order.team_id, self.team)

    def test_affiliate_link_wins_over_round_robin(self):
        self.website.order_assignment_mode = "round_robin"
        with MockRequest(self.env, website=self.website) as request:
            request.session["affiliate_id"] = self.fixed.id
            values = self.website._prepare_sale_order_values(
                self.partner, self.env["product.pricelist"].search([], limit=1)
            )
        self.assertEqual(values["user_id"], self.fixed.id)


@tagged("post_install", "-at_install")
class TestRoundRobinConcurrency(CommittedCase):
    """Two requests creating carts at the same moment, in two real transactions."""

    def setUp(self):
        super().setUp()
        # The other transactions must see the team and website: commit them in
        # a cursor of their own, and remove them afterwards.
        self.ids = self.commit(self._create_data)

    def _create_data(self, env):
        users = env["res.users"].create(
            [
                {
                    "name": "Race %s" % n,
                    "login": "race_%s" % n,
                    "groups_id": [(6, 0, [env.ref("sales_team.group_sale_salesman").id])],
                }
                for n in ("a", "b")
            ]
        )
        self.track(users.partner_id)
        self.track(users)
        team = self.track(
            env["crm.team"].create({"name": "Race Team", "member_ids": [(6, 0, users.ids)]})
        )
        website = self.track(
            env["website"].create(
                {
                    "name": "Race Shop",
                    "salesteam_id": team.id,
                    "order_assignment_mode": "round_robin",
                }
            )
        )
        return {"users": users.ids, "team": team.id, "website": website.id}

    def _remove_committed(self, env):
        # The website's turn counter, which the website made, goes after it.
        sequence = self.tracked(env, "website").order_assignment_sequence_id
        removed = super()._remove_committed(env)
        sequence.unlink()
        return removed

    def test_two_simultaneous_carts_never_get_the_same_turn(self):
        barrier = threading.Barrier(2, timeout=20)
        picked, errors = [], []

        def create_cart():
            try:
                with api.Environment.manage(), self.registry.cursor() as cr:
                    env = api.Environment(cr, api.SUPERUSER_ID, {})
                    website = env["website"].browse(self.ids["website"])
                    barrier.wait()  # both transactions are open at once
                    user = website._get_round_robin_salesperson()
                    barrier.wait()  # neither commits before both have picked
                    picked.append(user.id)
            except Exception as error:  # reported by the assertion below
                errors.append(error)

        threads = [threading.Thread(target=create_cart) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertFalse(errors)
        self.assertEqual(sorted(picked), sorted(self.ids["users"]))


@tagged("post_install", "-at_install")
class TestPortalOrderAssignment(OrderHandlingHttpCase):
    def test_logged_in_customer_cart_follows_the_websites_rule(self):
        website = self.env["website"].browse(1)
        seller = new_test_user(
            self.env, login="portal_rr_seller", groups="sales_team.group_sale_salesman"
        )
        team = self.env["crm.team"].create(
            {"name": "Portal Team", "member_ids": [(6, 0, seller.ids)]}
        )
        website.write({"salesteam_id": team.id, "order_assignment_mode": "round_robin"})
        product = self.env["product.product"].create(
            {"name": "Portal Lamp", "list_price": 10.0, "is_published": True}
        )
        customer = self._new_portal_customer("rr_portal_customer")
        self.authenticate("rr_portal_customer", "rr_portal_customer")
        self._add_to_cart(product)
        order = self._last_cart(customer.partner_id)
        self.assertEqual(order.user_id, seller)
        self.assertEqual(order.team_id, team)
