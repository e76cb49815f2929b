"""Web orders go to a salesperson: fixed, round robin, or the customer's own."""

import threading
from datetime import timedelta
from unittest.mock import patch

import psycopg2.errors

from flectra import api, fields
from flectra.addons.website.tools import MockRequest
from flectra.tests import tagged
from flectra.tests.common import new_test_user
from flectra.tools import mute_logger

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
        cls.shopper = new_test_user(cls.env, login="rr_shopper", groups="base.group_portal")

    # -- helpers ----------------------------------------------------------
    def _cart_values(self, partner=None, website=None, affiliate=None):
        """The values website_sale creates a new cart with, on ``website``."""
        website = (website or self.website).with_context(website_id=(website or self.website).id)
        with MockRequest(self.env, website=website) as request:
            if affiliate:
                request.session["affiliate_id"] = affiliate.id
            return website._prepare_sale_order_values(
                partner or self.partner, self.env["product.pricelist"].search([], limit=1)
            )

    def _new_cart(self, partner=None, website=None, affiliate=None):
        """A cart created the way website_sale creates one (with its mail features)."""
        values = self._cart_values(partner, website, affiliate)
        values["order_line"] = [(0, 0, {"product_id": self.product.id, "product_uom_qty": 1})]
        return self.env["sale.order"].with_context(tracking_disable=False).sudo().create(values)

    @staticmethod
    def _place(order):
        """The payment step, as payment's pending transaction does it."""
        order.with_context(tracking_disable=True).write({"state": "sent"})
        return order.user_id

    def _place_as_customer(self, order):
        """The payment step in the customer's own request (a portal user, the
        shop's code in sudo)."""
        order.with_user(self.shopper).sudo().with_context(tracking_disable=True).write(
            {"state": "sent"}
        )

    def _run_assignment_cron(self):
        self.env.ref(
            "website_sale_order_handling.ir_cron_assign_placed_orders"
        ).method_direct_trigger()

    def _placed_salesperson(self, partner=None, website=None):
        return self._place(self._new_cart(partner, website))

    def _assigned_mails(self, order):
        """The "assigned to you" e-mails of ``order``."""
        return self.env["mail.mail"].search(
            [
                ("model", "=", "sale.order"),
                ("res_id", "=", order.id),
                ("subject", "like", "You have been assigned to"),
            ]
        )

    def _turns_taken(self, website=None):
        sequence = (website or self.website).order_assignment_sequence_id
        # Read from PostgreSQL's sequence, which the cron may have moved.
        sequence.invalidate_cache(["number_next_actual"])
        return sequence.number_next_actual - 1

    # -- a cart waits with the team ----------------------------------------------
    def test_round_robin_cart_waits_with_the_team_and_no_salesperson(self):
        """No turn is taken, and nobody is told, for a cart that may be abandoned."""
        self.website.order_assignment_mode = "round_robin"
        cart = self._new_cart()
        self.assertFalse(cart.user_id)
        self.assertEqual(cart.team_id, self.team, "the website's team, as stock Flectra")
        self.assertEqual(self._turns_taken(), 0)
        self.assertFalse(self._assigned_mails(cart))

    def test_customer_first_cart_waits_too(self):
        self.website.order_assignment_mode = "customer_first"
        own = new_test_user(self.env, login="rr_own_wait", groups="sales_team.group_sale_salesman")
        self.partner.user_id = own
        cart = self._new_cart()
        self.assertFalse(cart.user_id)
        self.assertEqual(cart.team_id, self.team)
        self.assertEqual(self._place(cart), own, "the customer's salesperson, once placed")

    # -- the turn is taken when the order is placed --------------------------------
    def test_quotation_sent_takes_the_turn_and_queues_the_notification(self):
        self.website.order_assignment_mode = "round_robin"
        (self.anna | self.bruno | self.carla).write({"notification_type": "email"})
        cart = self._new_cart()
        salesperson = self._place(cart)
        self.assertIn(salesperson, self.anna | self.bruno | self.carla)
        self.assertEqual(self._turns_taken(), 1)
        mails = self._assigned_mails(cart)
        self.assertEqual(mails.recipient_ids, salesperson.partner_id)
        self.assertEqual(mails.mapped("state"), ["outgoing"], "queued, not sent in the request")
        self.assertIn(salesperson.partner_id, cart.message_partner_ids, "follows the order")

    def test_confirmation_takes_the_turn_of_an_order_not_sent_before(self):
        """A salesperson (own documents only) confirms an unassigned cart in
        the backend: the confirmation goes through, then the turn is taken."""
        self.website.order_assignment_mode = "round_robin"
        cart = self._new_cart()
        cart.with_user(self.fixed).action_confirm()
        self.assertEqual(cart.state, "sale")
        self.assertTrue(cart.picking_ids, "the confirmation went through")
        self.assertIn(cart.user_id, self.anna | self.bruno | self.carla)
        self.assertEqual(self._turns_taken(), 1)

    def test_to_confirm_queue_takes_the_turn(self):
        self.website.order_assignment_mode = "round_robin"
        carts = self._new_cart() | self._new_cart()
        carts.action_confirm_web_orders()
        self.assertEqual(len(carts.user_id), 2, "two turns, two salespeople")
        self.assertEqual(self._turns_taken(), 2)

    def test_web_order_created_placed_takes_the_turn(self):
        """An order created already placed (an import, RPC) takes its turn too."""
        self.website.order_assignment_mode = "round_robin"
        order = self.env["sale.order"].create(
            {
                "partner_id": self.partner.id,
                "website_id": self.website.id,
                "user_id": False,
                "state": "sent",
            }
        )
        self.assertIn(order.user_id, self.anna | self.bruno | self.carla)
        self.assertEqual(self._turns_taken(), 1)

    def test_the_turn_is_taken_exactly_once(self):
        """Placed, then confirmed, then assigned again: one turn, one e-mail."""
        self.website.order_assignment_mode = "round_robin"
        (self.anna | self.bruno | self.carla).write({"notification_type": "email"})
        cart = self._new_cart()
        salesperson = self._place(cart)
        cart.action_confirm()
        self.env["website"]._assign_placed_orders(cart)
        self.assertEqual(cart.user_id, salesperson)
        self.assertEqual(self._turns_taken(), 1)
        self.assertEqual(len(self._assigned_mails(cart)), 1)

    # -- placed by the customer: the cron takes the turn ----------------------------
    def test_customers_placement_waits_for_the_cron(self):
        """The customer's request only marks the order; the cron gives it its
        turn, its follower and its queued "assigned to you" e-mail, once."""
        self.website.order_assignment_mode = "round_robin"
        (self.anna | self.bruno | self.carla).write({"notification_type": "email"})
        carts = self._new_cart() | self._new_cart()
        for cart in carts:
            self._place_as_customer(cart)
        self.assertFalse(carts.user_id)
        self.assertEqual(carts.mapped("assignment_pending"), [True, True])
        self.assertEqual(self._turns_taken(), 0)
        self.assertFalse(self._assigned_mails(carts[0]) | self._assigned_mails(carts[1]))
        self._run_assignment_cron()
        self.assertEqual(len(carts.user_id), 2, "two turns, two salespeople")
        self.assertEqual(carts.mapped("assignment_pending"), [False, False])
        self.assertEqual(self._turns_taken(), 2)
        for cart in carts:
            mails = self._assigned_mails(cart)
            self.assertEqual(mails.recipient_ids, cart.user_id.partner_id)
            self.assertEqual(mails.mapped("state"), ["outgoing"])
            self.assertIn(cart.user_id.partner_id, cart.message_partner_ids)
        self._run_assignment_cron()
        self.assertEqual(self._turns_taken(), 2, "the turn is taken once")

    def test_a_salesperson_confirming_a_waiting_order_takes_the_turn_first(self):
        self.website.order_assignment_mode = "round_robin"
        cart = self._new_cart()
        self._place_as_customer(cart)
        cart.with_user(self.fixed).action_confirm()
        self.assertIn(cart.user_id, self.anna | self.bruno | self.carla)
        self.assertFalse(cart.assignment_pending)
        salesperson = cart.user_id
        self._run_assignment_cron()
        self.assertEqual(cart.user_id, salesperson)
        self.assertEqual(self._turns_taken(), 1)

    def test_waiting_orders_that_need_no_turn_anymore_stop_waiting(self):
        """Given a salesperson by hand, cancelled, or the website went back to a
        fixed salesperson, before the cron ran: no turn is taken for them."""
        self.website.order_assignment_mode = "round_robin"
        by_hand, cancelled, fixed = carts = self._new_cart() | self._new_cart() | self._new_cart()
        for cart in carts:
            self._place_as_customer(cart)
        by_hand.user_id = self.carla
        self.assertFalse(by_hand.assignment_pending, "a salesperson ends the wait")
        cancelled.action_cancel()
        self._run_assignment_cron()
        self.assertEqual(self._turns_taken(), 1, "only the third order's")
        self.assertEqual(by_hand.user_id, self.carla)
        self.assertFalse(cancelled.user_id)
        self.assertTrue(fixed.user_id)
        later = self._new_cart()
        self._place_as_customer(later)
        self.website.order_assignment_mode = "fixed"
        self._run_assignment_cron()
        self.assertFalse(later.user_id)
        self.assertFalse((carts | later).filtered("assignment_pending"))
        self.assertEqual(self._turns_taken(), 1)

    def test_an_order_that_fails_to_assign_does_not_stop_the_others(self):
        self.website.order_assignment_mode = "round_robin"
        broken_partner = self.env["res.partner"].create({"name": "Broken"})
        carts = self._new_cart() | self._new_cart(partner=broken_partner) | self._new_cart()
        for cart in carts:
            self._place_as_customer(cart)
        Website = type(self.env["website"])
        stock_pick = Website._get_web_order_salesperson

        def failing_pick(website, partner):
            if partner == broken_partner:
                raise ValueError("a broken record")
            return stock_pick(website, partner)

        with (
            patch.object(Website, "_get_web_order_salesperson", failing_pick),
            self.assertLogs(
                "flectra.addons.website_sale_order_handling.models.website", "ERROR"
            ) as logs,
        ):
            self._run_assignment_cron()
        self.assertIn(carts[1].name, logs.output[0])
        self.assertTrue(carts[0].user_id and carts[2].user_id)
        self.assertFalse(carts[1].user_id)
        self.assertTrue(carts[1].assignment_pending, "it waits for the next run")
        self._run_assignment_cron()
        self.assertTrue(carts[1].user_id)
        self.assertEqual(self._turns_taken(), 3)

    def test_an_order_that_fails_after_its_write_is_left_as_it_was(self):
        """The failure comes once the salesperson is written (the "assigned to
        you" notification breaks): nothing of it stays, the order waits."""
        self.website.order_assignment_mode = "round_robin"
        broken_partner = self.env["res.partner"].create({"name": "Broken Later"})
        carts = self._new_cart() | self._new_cart(partner=broken_partner)
        for cart in carts:
            self._place_as_customer(cart)
        Order = type(self.env["sale.order"])
        stock_notify = Order._message_auto_subscribe_notify

        def failing_notify(order, partner_ids, template):
            if order.partner_id == broken_partner:
                raise ValueError("a broken notification")
            return stock_notify(order, partner_ids, template)

        with (
            patch.object(Order, "_message_auto_subscribe_notify", failing_notify),
            mute_logger("flectra.addons.website_sale_order_handling.models.website"),
        ):
            self._run_assignment_cron()
        self.assertTrue(carts[0].user_id)
        self.assertFalse(carts[1].user_id)
        self.assertTrue(carts[1].assignment_pending, "it waits for the next run")
        self._run_assignment_cron()
        self.assertTrue(carts[1].user_id)
        self.assertFalse(carts[1].assignment_pending)

    def test_salesperson_set_by_hand_is_kept(self):
        self.website.order_assignment_mode = "round_robin"
        cart = self._new_cart()
        cart.user_id = self.carla
        self.assertEqual(self._place(cart), self.carla)
        cart.action_confirm()
        self.assertEqual(cart.user_id, self.carla)
        self.assertEqual(self._turns_taken(), 0)

    def test_affiliate_link_wins_over_round_robin(self):
        self.website.order_assignment_mode = "round_robin"
        self.assertEqual(self._cart_values(affiliate=self.fixed)["user_id"], self.fixed.id)
        cart = self._new_cart(affiliate=self.fixed)
        self.assertEqual(cart.user_id, self.fixed)
        self.assertEqual(self._place(cart), self.fixed)
        self.assertEqual(self._turns_taken(), 0)

    def test_round_robin_gives_each_member_a_turn(self):
        self.website.order_assignment_mode = "round_robin"
        got = [self._placed_salesperson() for _ in range(6)]
        self.assertEqual(got[:3], got[3:], "the cycle repeats")
        self.assertEqual(set(u.id for u in got[:3]), set((self.anna | self.bruno | self.carla).ids))

    def test_abandoned_carts_take_no_turn(self):
        """Three carts left behind, then an order: the order gets the first turn."""
        self.website.order_assignment_mode = "round_robin"
        first = self._placed_salesperson()
        for _ in range(3):
            self._new_cart()
        got = [first] + [self._placed_salesperson() for _ in range(2)]
        self.assertEqual(len(set(got)), 3, "three orders, three salespeople")

    def test_round_robin_skips_archived_and_removed_members(self):
        self.website.order_assignment_mode = "round_robin"
        self.bruno.active = False
        self.team.member_ids = [(3, self.carla.id)]
        got = {self._placed_salesperson() for _ in range(4)}
        self.assertEqual(got, {self.anna})

    def test_customer_first_keeps_the_customers_salesperson(self):
        self.website.order_assignment_mode = "customer_first"
        own = new_test_user(self.env, login="rr_own", groups="sales_team.group_sale_salesman")
        self.partner.user_id = own
        self.assertEqual(self._placed_salesperson(), own)
        contact = self.env["res.partner"].create({"name": "Buyer", "parent_id": self.partner.id})
        self.assertEqual(self._placed_salesperson(contact), own, "the company's salesperson")
        self.assertEqual(self._turns_taken(), 0)

    def test_customer_first_falls_back_to_round_robin(self):
        self.website.order_assignment_mode = "customer_first"
        archived = new_test_user(self.env, login="rr_gone", groups="sales_team.group_sale_salesman")
        archived.active = False
        self.partner.user_id = archived
        got = {self._placed_salesperson() for _ in range(3)}
        self.assertEqual(got, set(self.anna | self.bruno | self.carla))

    def test_empty_team_falls_back_to_website_salesperson_then_nobody(self):
        self.website.order_assignment_mode = "round_robin"
        self.team.member_ids = [(5,)]
        self.assertEqual(self._placed_salesperson(), self.fixed)
        self.website.salesperson_id = False
        self.assertFalse(self._placed_salesperson())

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
        order.order_line = [(0, 0, {"product_id": self.product.id, "product_uom_qty": 1})]
        order.action_confirm()
        self.assertEqual(order.state, "sale", "confirmed, with nobody to assign")
        self.assertFalse(order.user_id)

    # -- fixed mode: stock Flectra -------------------------------------------------
    def test_fixed_mode_keeps_the_website_salesperson(self):
        self.assertEqual(self.website.order_assignment_mode, "fixed")
        cart = self._new_cart()
        self.assertEqual(cart.user_id, self.fixed, "on the cart, as stock Flectra")
        self.assertEqual(self._place(cart), self.fixed)

    def test_fixed_mode_values_are_stock_flectras(self):
        """Fixed mode gives website_sale's values untouched: without a website
        salesperson, the customer's own salesperson, as stock Flectra."""
        own = new_test_user(self.env, login="rr_own_fixed", groups="sales_team.group_sale_salesman")
        self.partner.user_id = own
        self.website.salesperson_id = False
        cart = self._new_cart()
        self.assertEqual(cart.user_id, own)
        self.assertEqual(cart.team_id, self.team)
        self.assertFalse(self.website.order_assignment_sequence_id, "no turn counter")

    def test_fixed_mode_leaves_an_unassigned_order_unassigned(self):
        self.website.salesperson_id = False
        cart = self._new_cart()
        self.assertFalse(self._place(cart))
        cart.action_confirm()
        self.assertFalse(cart.user_id)

    def test_new_web_cart_queues_the_salesperson_notification(self):
        """Fixed mode: the "assigned to you" e-mail of a new cart goes through
        the mail queue: the customer's add-to-cart never waits for SMTP (issue 13)."""
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

    # -- what works with a cart that has no salesperson -------------------------------
    def test_unassigned_cart_is_in_the_abandoned_carts_and_gets_its_email(self):
        """A cart waiting with nobody: the Abandoned Carts menu lists it, and
        the e-mail goes out from the company (the template's fallback)."""
        self.website.write(
            {"order_assignment_mode": "round_robin", "send_abandoned_cart_email": True}
        )
        now = fields.Datetime.now()
        self.website.abandoned_cart_email_start = now - timedelta(days=10)
        cart = self._new_cart()
        cart.cart_last_activity = now - timedelta(hours=5)
        self.assertFalse(cart.user_id)
        self.assertIn(cart, self.env["sale.order"].search([("is_abandoned_cart", "=", True)]))
        self.env["website.abandoned.cart.mailer"]._send_abandoned_cart_emails(self.website)
        self.assertEqual(cart.cart_reminder_count, 1)
        mail = self.env["mail.mail"].search(
            [
                ("model", "=", "sale.order"),
                ("res_id", "=", cart.id),
                ("is_cart_reminder", "=", True),
            ]
        )
        self.assertEqual(len(mail), 1)
        self.assertIn(self.website.company_id.email, mail.email_from)


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
        partner = self.track(env["res.partner"].create({"name": "Race Customer"}))
        return {"users": users.ids, "team": team.id, "website": website.id, "partner": partner.id}

    def _remove_committed(self, env):
        # The website's turn counter, which the website made, goes after it.
        sequence = self.tracked(env, "website").order_assignment_sequence_id
        removed = super()._remove_committed(env)
        sequence.unlink()
        return removed

    def _commit_unassigned_order(self, **values):
        """A committed web order of the race website, with no salesperson."""

        def create(env):
            vals = dict(
                {
                    "partner_id": self.ids["partner"],
                    "website_id": self.ids["website"],
                    "user_id": False,
                },
                **values,
            )
            return self.track(env["sale.order"].create(vals)).id

        return self.commit(create)

    def test_two_transactions_assigning_one_order_assign_it_once(self):
        """The payment and a salesperson place the same order at the same
        moment: one transaction assigns it, the other waits, then fails to
        serialize (a request is retried by Flectra, and then finds it assigned)."""
        order_id = self._commit_unassigned_order()
        barrier = threading.Barrier(2, timeout=20)

        def assign(env):
            order = env["sale.order"].browse(order_id)
            self.assertFalse(order.user_id)  # both snapshots see no salesperson
            barrier.wait()
            # The loser's failed query is logged as an error by Flectra.
            with mute_logger("flectra.sql_db"):
                env["website"]._assign_placed_orders(order)
            return order.user_id.id

        workers = [self.start_worker(assign) for _ in range(2)]
        for thread, _outcome in workers:
            thread.join(30)
        outcomes = [outcome for _thread, outcome in workers]
        assigned = [o["result"] for o in outcomes if o.get("result")]
        failed = [o["error"] for o in outcomes if "error" in o]
        self.assertEqual(len(assigned), 1, outcomes)
        self.assertEqual(len(failed), 1, outcomes)
        self.assertIsInstance(failed[0], psycopg2.errors.SerializationFailure)

        def check(env):
            order = env["sale.order"].browse(order_id)
            # The retried request: nothing left to assign.
            env["website"]._assign_placed_orders(order)
            mails = env["mail.mail"].search(
                [
                    ("model", "=", "sale.order"),
                    ("res_id", "=", order_id),
                    ("subject", "like", "You have been assigned to"),
                ]
            )
            sequence = env["website"].browse(self.ids["website"]).order_assignment_sequence_id
            return order.user_id.id, len(mails), sequence.number_next_actual

        user_id, mail_count, next_turn = self.snapshot(check)
        self.assertEqual(user_id, assigned[0])
        self.assertEqual(mail_count, 1, "one 'assigned to you' e-mail")
        self.assertEqual(next_turn, 2, "one turn taken")

    def test_the_cron_skips_an_order_a_salesperson_is_assigning(self):
        """A salesperson confirms a waiting order while the cron runs: the cron
        does not wait for that row, the salesperson's transaction assigns it,
        and the next run only finds it done (one turn)."""
        order_id = self._commit_unassigned_order(assignment_pending=True)
        locked, release = threading.Event(), threading.Event()

        def salesperson(env):
            order = env["sale.order"].browse(order_id)
            env["website"]._assign_now(order)  # the row stays locked until commit
            env["base"].flush()
            locked.set()
            release.wait(20)
            return order.user_id.id

        thread, outcome = self.start_worker(salesperson)
        self.assertTrue(locked.wait(20))
        try:
            self.run_worker(lambda env: env["website"]._cron_assign_placed_orders())
        finally:
            release.set()
            thread.join(30)
        self.assertTrue(outcome.get("result"), outcome)
        self.run_worker(lambda env: env["website"]._cron_assign_placed_orders())

        def check(env):
            order = env["sale.order"].browse(order_id)
            sequence = env["website"].browse(self.ids["website"]).order_assignment_sequence_id
            return order.user_id.id, order.assignment_pending, sequence.number_next_actual

        user_id, pending, next_turn = self.snapshot(check)
        self.assertEqual(user_id, outcome["result"])
        self.assertFalse(pending)
        self.assertEqual(next_turn, 2, "one turn taken")

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
    def test_shop_cart_waits_and_the_placed_order_takes_the_turn(self):
        """Through the shop's routes: the cart has the team and nobody; the
        wire transfer checkout (Quotation sent) marks it, and the cron gives
        it its salesperson."""
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
        transfer = self.env.ref("payment.payment_acquirer_transfer")
        transfer.write({"state": "enabled", "website_id": False})
        customer = self._new_portal_customer("rr_portal_customer")
        self.authenticate("rr_portal_customer", "rr_portal_customer")
        self._add_to_cart(product)
        order = self._last_cart(customer.partner_id)
        self.assertFalse(order.user_id)
        self.assertEqual(order.team_id, team)
        self._checkout_with(order, transfer)
        self.assertEqual(order.state, "sent")
        self.assertFalse(order.user_id, "the customer's request only marks it")
        self.assertTrue(order.assignment_pending)
        self.env.ref(
            "website_sale_order_handling.ir_cron_assign_placed_orders"
        ).method_direct_trigger()
        self.assertEqual(order.user_id, seller)
        self.assertFalse(order.assignment_pending)
        self.assertEqual(order.team_id, team)
        mails = self.env["mail.mail"].search(
            [
                ("model", "=", "sale.order"),
                ("res_id", "=", order.id),
                ("subject", "like", "You have been assigned to"),
            ]
        )
        self.assertEqual(mails.recipient_ids, seller.partner_id)
        self.assertEqual(mails.state, "outgoing")
