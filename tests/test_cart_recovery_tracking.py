import threading
import time
from datetime import timedelta

import psycopg2

import flectra
from flectra import SUPERUSER_ID, api, fields
from flectra.exceptions import ValidationError
from flectra.tests import tagged

from .cart_recovery_common import CartRecoveryCase
from .committed_common import CommittedCase
from .common import OrderHandlingHttpCase


@tagged("post_install", "-at_install")
class TestCartRecoveryTracking(CartRecoveryCase):
    def test_confirmation_within_window_records_step_and_date(self):
        cart = self._emailed_cart(sent_days_ago=6)
        self.assertFalse(cart.cart_recovery_step)
        before = fields.Datetime.now()
        cart.action_confirm()
        self.assertEqual(cart.cart_recovery_step, 1)
        self.assertEqual(cart.cart_recovered_cart_id, cart)
        self.assertGreaterEqual(cart.cart_recovered_date, before)
        self.assertLessEqual(cart.cart_recovered_date, fields.Datetime.now())
        recovery = self._recoveries(order_id=cart)
        self.assertEqual(
            (recovery.cart_id, recovery.step, recovery.website_id), (cart, 1, self.website)
        )

    def test_confirmation_after_window_records_nothing(self):
        self.assertEqual(self.website.cart_recovery_window_days, 7, "7 days by default")
        cart = self._emailed_cart(sent_days_ago=8)
        cart.action_confirm()
        self.assertFalse(cart.cart_recovery_step)
        self.assertFalse(cart.cart_recovered_date)
        self.assertFalse(self._recoveries(cart_id=cart))

    def test_window_is_set_per_website(self):
        self.website.cart_recovery_window_days = 10
        cart = self._emailed_cart(sent_days_ago=8)
        cart.action_confirm()
        self.assertEqual(cart.cart_recovery_step, 1)
        with self.assertRaises(ValidationError):
            self.website.cart_recovery_window_days = 0

    def test_step_of_a_follow_up_reminder(self):
        self.env["website.cart.reminder"].create(
            {"website_id": self.website.id, "delay_hours": 1.0}
        )
        cart = self._emailed_cart()
        cart.cart_reminder_last_sent = fields.Datetime.now() - timedelta(hours=2)
        self._run_cron()
        self.assertEqual(cart.cart_reminder_count, 2)
        emails = self.Event.search([("kind", "=", "email"), ("cart_id", "=", cart.id)])
        self.assertEqual(sorted(emails.mapped("step")), [1, 2], "one e-mail event per step")
        cart.action_confirm()
        self.assertEqual(cart.cart_recovery_step, 2)

    def test_cart_never_emailed_is_not_a_recovery(self):
        cart = self._abandoned_cart()
        cart.action_confirm()
        self.assertFalse(cart.cart_recovery_step)
        self.assertFalse(self._recoveries(order_id=cart))

    # --- The three paths, each counted once ------------------------------------
    def test_path_resume_link_then_payment(self):
        cart = self._emailed_cart()
        self.assertEqual(
            self.env["website.cart.recovery.event"]._log_resume_click(cart.access_token), cart
        )
        self.assertEqual(cart.cart_resume_click_count, 1)
        # Payment confirms the order as the salesperson's button does: action_confirm.
        cart.action_confirm()
        self.assertEqual(len(self._recoveries(cart_id=cart)), 1)
        self.assertEqual(cart.cart_recovery_step, 1)

    def test_path_new_cart_of_the_same_customer(self):
        company = self._new_customer("Recovery Company", is_company=True)
        buyer = self._new_customer("Recovery Buyer", parent_id=company.id)
        colleague = self._new_customer("Recovery Colleague", parent_id=company.id)
        reminded = self._emailed_cart(partner=buyer, sent_days_ago=2)
        new_cart = self._create_web_order(partner=colleague, lines=[(self.service, 3)])
        new_cart.action_confirm()
        self.assertEqual(new_cart.cart_recovered_cart_id, reminded)
        self.assertEqual(new_cart.cart_recovery_step, 1)
        self.assertTrue(new_cart.cart_recovered_date)
        recovery = self._recoveries(cart_id=reminded)
        self.assertEqual(recovery.order_id, new_cart)
        # The salesperson confirms the old quotation later: the reminder was counted already.
        reminded.with_user(self.salesman).action_confirm_web_orders()
        self.assertEqual(reminded.state, "sale")
        self.assertFalse(reminded.cart_recovery_step)
        self.assertEqual(
            len(self._recoveries(cart_id=reminded) | self._recoveries(order_id=reminded)), 1
        )

    def test_path_guest_back_under_a_new_contact_with_the_same_address(self):
        """Each guest checkout makes a contact: the person is their address."""
        first_visit = self._new_customer("Guest Returning", email="guest.returning@example.com")
        reminded = self._emailed_cart(partner=first_visit, sent_days_ago=2)
        second_visit = self._new_customer(
            "Guest Returning Again", email="Guest.Returning@Example.com"
        )
        new_cart = self._create_web_order(partner=second_visit, lines=[(self.service, 2)])
        new_cart.action_confirm()
        self.assertEqual(new_cart.cart_recovered_cart_id, reminded)
        self.assertEqual(len(self._recoveries(cart_id=reminded)), 1)
        # A third visit, another new contact: that reminder is spent, the new order credits nothing.
        third_visit = self._new_customer(
            "Guest Returning Thrice", email="guest.returning@example.com"
        )
        again = self._create_web_order(partner=third_visit, lines=[(self.service, 1)])
        again.action_confirm()
        self.assertFalse(again.cart_recovered_cart_id)
        self.assertEqual(len(self._recoveries(order_id=new_cart)), 1)
        self.assertEqual(len(self.Event.search([("kind", "=", "recovery")])), 1)

    def test_guest_who_ordered_under_a_new_contact_gets_no_more_reminders(self):
        first_visit = self._new_customer("Guest Ordered", email="guest.ordered@example.com")
        cart = self._abandoned_cart(partner=first_visit)
        second_visit = self._new_customer("Guest Ordered Again", email="guest.ordered@example.com")
        self._create_web_order(partner=second_visit, lines=[(self.service, 1)]).action_confirm()
        self._run_cron()
        self.assertNotEmailed(cart)

    def test_path_salesperson_confirms_the_reminded_quotation(self):
        cart = self._emailed_cart()
        cart.with_user(self.salesman).action_confirm_web_orders()
        self.assertEqual(cart.state, "sale")
        self.assertEqual(cart.cart_recovery_step, 1)
        self.assertEqual(len(self._recoveries(cart_id=cart)), 1)

    def test_two_paths_for_the_same_order_count_once(self):
        cart = self._emailed_cart()
        self.env["website.cart.recovery.event"]._log_resume_click(cart.access_token)
        cart.action_confirm()
        # Cancelled, set back to quotation, confirmed again by a salesperson.
        cart.action_cancel()
        cart.action_draft()
        cart.with_user(self.salesman).action_confirm_web_orders()
        self.assertEqual(cart.state, "sale")
        self.assertEqual(len(self._recoveries(order_id=cart)), 1)
        # Then a new cart of the same customer: that reminder is spent.
        again = self._create_web_order(lines=[(self.service, 1)])
        again.action_confirm()
        self.assertFalse(again.cart_recovered_cart_id)
        self.assertEqual(len(self.Event.search([("kind", "=", "recovery")])), 1)

    def test_new_cart_credits_the_newest_reminded_cart_then_the_next(self):
        older = self._emailed_cart(sent_days_ago=3)
        newer = self._emailed_cart(lines=[(self.service, 2)], sent_days_ago=1)
        first = self._create_web_order(lines=[(self.service, 5)])
        first.action_confirm()
        self.assertEqual(first.cart_recovered_cart_id, newer)
        second = self._create_web_order(lines=[(self.service, 6)])
        second.action_confirm()
        self.assertEqual(
            second.cart_recovered_cart_id, older, "each reminded cart is credited once"
        )
        third = self._create_web_order(lines=[(self.service, 7)])
        third.action_confirm()
        self.assertFalse(third.cart_recovered_cart_id)

    def test_new_cart_outside_window_or_other_customer_or_website_credits_nothing(self):
        reminded = self._emailed_cart(sent_days_ago=8)
        late = self._create_web_order(lines=[(self.service, 1)])
        late.action_confirm()
        self.assertFalse(late.cart_recovered_cart_id, "8 days after the e-mail")
        reminded.cart_reminder_last_sent = fields.Datetime.now() - timedelta(days=1)
        stranger = self._create_web_order(partner=self._new_customer("Other Buyer"))
        stranger.action_confirm()
        self.assertFalse(stranger.cart_recovered_cart_id, "another customer")
        other_site = self.env["website"].create({"name": "Other Recovery Shop"})
        elsewhere = self._create_web_order(website_id=other_site.id)
        elsewhere.action_confirm()
        self.assertFalse(elsewhere.cart_recovered_cart_id, "another website")
        backend = self._create_web_order(website_id=False)
        backend.action_confirm()
        self.assertFalse(backend.cart_recovered_cart_id, "not a web order")
        self.assertFalse(self.Event.search([("kind", "=", "recovery")]))

    def test_merged_cart_is_credited_to_the_cart_it_went_into(self):
        """website_sale's 'merge' moves the reminded cart's lines to the
        current cart and cancels it: confirming that cart recovers it."""
        reminded = self._emailed_cart()
        current = self._create_web_order(lines=[(self.service, 1)])
        reminded.order_line.write({"order_id": current.id})
        reminded.action_cancel()
        current.action_confirm()
        self.assertEqual(current.cart_recovered_cart_id, reminded)

    def test_orders_confirmed_together_are_each_counted(self):
        reminded = self._emailed_cart()
        buyer = self._new_customer("Batch Buyer")
        other = self._emailed_cart(partner=buyer)
        new_cart = self._create_web_order(partner=buyer, lines=[(self.service, 2)])
        (reminded | new_cart).with_user(self.salesman).action_confirm_web_orders()
        self.assertEqual(reminded.cart_recovered_cart_id, reminded)
        self.assertEqual(new_cart.cart_recovered_cart_id, other)
        self.assertEqual(len(self.Event.search([("kind", "=", "recovery")])), 2)


@tagged("post_install", "-at_install")
class TestCartResumeClicks(CartRecoveryCase):
    def test_clicks_are_counted_per_cart(self):
        cart = self._emailed_cart()
        other = self._emailed_cart(partner=self._new_customer("Click Other"))
        Events = self.env["website.cart.recovery.event"]
        for _click in range(2):
            Events._log_resume_click(cart.access_token)
        self.assertEqual(cart.cart_resume_click_count, 1, "one an hour")
        self.assertEqual(other.cart_resume_click_count, 0)
        Events._log_resume_click(other.access_token)
        self.assertEqual(other.cart_resume_click_count, 1)
        clicks = self.Event.search([("kind", "=", "click")])
        self.assertEqual(clicks.cart_id, cart | other)
        self.assertEqual(clicks.mapped("step"), [1, 1])

    def test_a_cart_counts_one_click_an_hour_however_often_its_link_is_opened(self):
        cart = self._emailed_cart()
        Events = self.env["website.cart.recovery.event"]
        with self.assertQueryCount(1):
            self.assertEqual(Events._log_resume_click(cart.access_token), cart)
        with self.assertQueryCount(1):  # not counted: one query, which writes nothing
            self.assertFalse(Events._log_resume_click(cart.access_token))
        for _request in range(1000):
            Events._log_resume_click(cart.access_token)
        self.assertEqual(cart.cart_resume_click_count, 1)
        self.assertEqual(len(self.Event.search([("kind", "=", "click")])), 1)
        # An hour later the customer comes back: that counts again, once.
        cart.cart_resume_click_last = fields.Datetime.now() - timedelta(minutes=61)
        for _request in range(10):
            Events._log_resume_click(cart.access_token)
        self.assertEqual(cart.cart_resume_click_count, 2)
        self.assertEqual(len(self.Event.search([("kind", "=", "click")])), 2)

    def test_click_lookup_uses_the_access_token_index(self):
        cart = self._emailed_cart()
        self.env["base"].flush()
        self.env.cr.execute("SET LOCAL enable_seqscan = off")
        self.env.cr.execute(
            "EXPLAIN UPDATE sale_order SET cart_resume_click_count = 1 WHERE access_token = %s",
            (cart.access_token,),
        )
        plan = "\n".join(row[0] for row in self.env.cr.fetchall())
        self.assertIn("sale_order_wsoh_access_token_index", plan)

    def test_bad_tokens_count_nothing_and_raise_nothing(self):
        cart = self._emailed_cart()
        never_emailed = self._create_web_order(lines=[(self.service, 1)])
        never_emailed._portal_ensure_token()
        Events = self.env["website.cart.recovery.event"]
        for token in (
            None,
            "",
            False,
            42,
            ["x"],
            "x" * 5000,
            "nul\x00byte",
            str(cart.id),
            cart.access_token + "x",
            cart.access_token.upper(),
            "' OR 1=1 --",
            never_emailed.access_token,
        ):
            self.assertFalse(Events._log_resume_click(token), repr(token))
        cart.action_confirm()
        self.assertFalse(Events._log_resume_click(cart.access_token), "not a cart anymore")
        self.assertEqual(cart.cart_resume_click_count, 0)
        self.assertFalse(self.Event.search([("kind", "=", "click")]))


@tagged("post_install", "-at_install")
class TestCartResumeClickRoute(OrderHandlingHttpCase):
    def setUp(self):
        super().setUp()
        self.website = self.env["website"].browse(1)
        self.website.write({"send_abandoned_cart_email": True, "cart_abandoned_delay": 1.0})
        self.website.abandoned_cart_email_start = fields.Datetime.now() - timedelta(days=1)
        product = self.env["product.product"].create(
            {"name": "Click Test Kettle", "list_price": 30.0, "is_published": True}
        )
        self.carts = self.env["sale.order"]
        for name in ("Click Customer", "Click Neighbour"):
            partner = self.env["res.partner"].create(
                {"name": name, "email": "%s@example.com" % name.lower().replace(" ", ".")}
            )
            cart = self.env["sale.order"].create(
                {
                    "partner_id": partner.id,
                    "website_id": self.website.id,
                    "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 1})],
                }
            )
            cart.cart_last_activity = fields.Datetime.now() - timedelta(hours=5)
            self.carts |= cart
        self.env["website.abandoned.cart.mailer"]._cron_send_abandoned_cart_email()
        self.assertEqual(self.carts.mapped("cart_reminder_count"), [1, 1])
        self.last_event_id = (
            self.env["website.cart.recovery.event"].search([], order="id desc", limit=1).id
        )

    def test_resume_link_counts_a_click_and_bad_links_never_fail(self):
        cart, neighbour = self.carts
        self.assertTrue(
            cart.get_cart_resume_url().endswith(
                "/shop/cart?access_token=%s&revive=squash" % cart.access_token
            )
        )
        response = self.url_open("/shop/cart?access_token=%s&revive=squash" % cart.access_token)
        self.assertEqual(response.status_code, 200)
        self.assertIn("Click Test Kettle", response.text)
        cart.invalidate_cache()
        self.assertEqual(cart.cart_resume_click_count, 1)
        bad = {
            "/shop/cart?access_token=wrong-token": 404,
            "/shop/cart?access_token=%00": 404,
            "/shop/cart?access_token=" + "a" * 3000: 404,
            "/shop/cart?access_token=%s&access_token=x" % "wrong": 404,
            "/shop/cart?revive=squash": 200,
            "/shop/cart?access_token=&revive=squash": 200,
            "/shop/cart?access_token=%s%%00&revive=squash" % neighbour.access_token: 404,
        }
        for path, status in bad.items():
            self.assertEqual(self.url_open(path).status_code, status, path)
        # The neighbour's cart id in a link, without its token, counts nothing.
        self.assertEqual(
            self.url_open("/shop/cart?access_token=%s&revive=squash" % neighbour.id).status_code,
            404,
        )
        self.carts.invalidate_cache()
        self.assertEqual(self.carts.mapped("cart_resume_click_count"), [1, 0])
        # Reloads of the link count nothing more, and cost the same queries each time.
        link = "/shop/cart?access_token=%s&revive=squash" % cart.access_token
        queries = []
        for _reload in range(6):
            before = flectra.sql_db.sql_counter
            self.assertEqual(self.url_open(link).status_code, 200)
            queries.append(flectra.sql_db.sql_counter - before)
        self.assertEqual(len(set(queries[1:])), 1, queries)
        cart.invalidate_cache()
        self.assertEqual(cart.cart_resume_click_count, 1)
        # The demo data's clicks are older: only this test's count here.
        clicks = self.env["website.cart.recovery.event"].search(
            [("kind", "=", "click"), ("id", ">", self.last_event_id)]
        )
        self.assertEqual(clicks.cart_id, cart)


@tagged("post_install", "-at_install")
class TestCartRecoveryConcurrency(CommittedCase):
    """Two new carts of the customer confirmed at the same time, in real
    transactions: the reminded cart is credited to one of them only."""

    def setUp(self):
        super().setUp()
        self.ids = self.commit(self._create_data, context={"tracking_disable": True})

    def _create_data(self, env):
        website = self.track(env["website"].create({"name": "Recovery Race Shop"}))
        product = self.track(
            env["product.product"].create(
                {
                    "name": "Race Gift Card",
                    "type": "service",
                    "list_price": 20.0,
                    "is_published": True,
                }
            )
        )
        partner = self.track(
            env["res.partner"].create({"name": "Race Buyer", "email": "race.buyer@example.com"})
        )
        orders = self.track(
            env["sale.order"].create(
                [
                    {
                        "partner_id": partner.id,
                        "website_id": website.id,
                        "order_line": [(0, 0, {"product_id": product.id, "product_uom_qty": 1})],
                    }
                    for _n in range(3)
                ]
            )
        )
        # The first one was e-mailed yesterday (as the cron's claim leaves it).
        orders[0].write(
            {
                "cart_reminder_count": 1,
                "cart_reminder_last_sent": fields.Datetime.now() - timedelta(days=1),
            }
        )
        return {
            "website": website.id,
            "product": product.id,
            "partner": partner.id,
            "orders": orders.ids,
        }

    def _remove_committed(self, env):
        # The orders' messages; confirmed orders are cancelled to be unlinked.
        orders = self.tracked(env, "sale.order")
        env["mail.message"].search(
            [("model", "=", "sale.order"), ("res_id", "in", orders.ids)]
        ).unlink()
        orders.write({"state": "cancel"})
        return super()._remove_committed(env)

    def _confirm(self, order_id, before_commit=None, started=None):
        """Confirm in a transaction of its own; retried once after a
        serialization failure, as Flectra retries a request."""
        for attempt in range(2):
            try:
                with api.Environment.manage(), self.registry.cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
                    cr.execute("SELECT 1")  # the snapshot of this transaction starts here
                    if started and not attempt:
                        started.set()
                    env["sale.order"].browse(order_id).action_confirm()
                    if before_commit and not attempt:
                        before_commit()
                return
            except psycopg2.OperationalError as error:
                if error.pgcode != "40001" or attempt:
                    raise

    def test_two_new_carts_confirmed_at_once_credit_the_reminded_cart_once(self):
        reminded, first, second = self.ids["orders"]
        confirmed, go, started = threading.Event(), threading.Event(), threading.Event()
        errors = []

        def hold_commit():
            confirmed.set()
            go.wait(30)

        def run(*args, **kwargs):
            try:
                self._confirm(*args, **kwargs)
            except Exception as error:  # reported by the main thread
                errors.append(error)

        one = threading.Thread(target=run, args=(first,), kwargs={"before_commit": hold_commit})
        one.start()
        self.assertTrue(confirmed.wait(60), "the first confirmation got to its commit")
        two = threading.Thread(target=run, args=(second,), kwargs={"started": started})
        two.start()
        started.wait(60)
        time.sleep(1)  # the second one now waits on the first one's credit
        go.set()
        one.join(60)
        two.join(60)
        self.assertFalse(errors)
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT cart_id, order_id FROM website_cart_recovery_event WHERE kind = 'recovery'"
                " AND (cart_id IN %s OR order_id IN %s)",
                (tuple(self.ids["orders"]), tuple(self.ids["orders"])),
            )
            self.assertEqual(cr.fetchall(), [(reminded, first)])
            cr.execute(
                "SELECT id, state, cart_recovered_cart_id FROM sale_order"
                " WHERE id IN %s ORDER BY id",
                (tuple(self.ids["orders"]),),
            )
            self.assertEqual(
                cr.fetchall(),
                [(reminded, "draft", None), (first, "sale", reminded), (second, "sale", None)],
            )
