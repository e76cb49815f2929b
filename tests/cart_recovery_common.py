from datetime import timedelta

from flectra import fields
from flectra.tests.common import new_test_user

from .abandoned_cart_common import AbandonedCartCase


class CartRecoveryCase(AbandonedCartCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Event = cls.env["website.cart.recovery.event"]
        # Carts of the database (demo data) are never e-mailed by these tests' cron runs.
        cls.env["sale.order"].flush()
        cls.env.cr.execute(
            "UPDATE sale_order SET cart_reminder_error = 'Set aside by the test'"
            " WHERE state = 'draft'"
        )
        cls.env["sale.order"].invalidate_cache(["cart_reminder_error"])
        # Nor counted: the demo e-mails sent at install are not these tests' figures.
        cls.env.cr.execute("DELETE FROM website_cart_recovery_event")
        cls.salesman = new_test_user(
            cls.env, login="recovery_salesman", groups="sales_team.group_sale_salesman_all_leads"
        )

    @classmethod
    def _new_customer(cls, name, **values):
        return cls.env["res.partner"].create(
            dict(
                {
                    "name": name,
                    "email": "%s@example.com" % name.lower().replace(" ", "."),
                },
                **values,
            )
        )

    def _emailed_cart(self, partner=None, sent_days_ago=0.0, **kwargs):
        """A cart the cron e-mailed, its e-mail ``sent_days_ago`` days ago."""
        cart = self._abandoned_cart(partner=partner, **kwargs)
        self._run_cron()
        self.assertEqual(cart.cart_reminder_count, 1)
        if sent_days_ago:
            cart.cart_reminder_last_sent = fields.Datetime.now() - timedelta(days=sent_days_ago)
        return cart

    def _recoveries(self, **domain):
        return self.Event.search(
            [("kind", "=", "recovery")] + [(name, "=", value.id) for name, value in domain.items()]
        )
