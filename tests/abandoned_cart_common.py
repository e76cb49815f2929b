from datetime import timedelta

from flectra import fields

from .common import OrderHandlingCase


class AbandonedCartCase(OrderHandlingCase):
    """A website sending abandoned cart e-mails after 1 hour, switched on 10 days ago."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.now = fields.Datetime.now()
        cls.website.write({"send_abandoned_cart_email": True, "cart_abandoned_delay": 1.0})
        cls.website.abandoned_cart_email_start = cls.now - timedelta(days=10)
        cls.public_partner = cls.website.user_id.partner_id

    @classmethod
    def _abandoned_cart(cls, hours_ago=2.0, **kwargs):
        """A web cart whose last change was ``hours_ago`` hours ago."""
        order = cls._create_web_order(**kwargs)
        order.cart_last_activity = cls.now - timedelta(hours=hours_ago)
        return order

    def _run_cron(self):
        self.env["website.abandoned.cart.mailer"]._cron_send_abandoned_cart_email()

    def _reminder_mails(self, order):
        return self.env["mail.mail"].search(
            [
                ("model", "=", "sale.order"),
                ("res_id", "=", order.id),
                ("is_cart_reminder", "=", True),
            ]
        )

    def assertEmailed(self, order, count=1):
        self.assertEqual(len(self._reminder_mails(order)), count)
        self.assertEqual(order.cart_reminder_count, count)

    def assertNotEmailed(self, order):
        self.assertFalse(self._reminder_mails(order))
        self.assertEqual(order.cart_reminder_count, 0)
