from datetime import timedelta

from flectra import api, fields, models

# The period of the recovery figures shown beside the abandoned cart e-mail settings.
CART_RECOVERY_SETTINGS_DAYS = 30


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    order_assignment_mode = fields.Selection(
        related="website_id.order_assignment_mode", readonly=False
    )

    # --- Online returns --------------------------------------------------------
    allow_online_returns = fields.Boolean(related="website_id.allow_online_returns", readonly=False)
    return_window_days = fields.Integer(related="website_id.return_window_days", readonly=False)
    return_exchange_shipping = fields.Selection(
        related="website_id.return_exchange_shipping", readonly=False
    )
    return_lookup_limit_per_address = fields.Integer(
        related="website_id.return_lookup_limit_per_address", readonly=False
    )
    return_lookup_limit_per_client = fields.Integer(
        related="website_id.return_lookup_limit_per_client", readonly=False
    )

    # --- Abandoned-cart e-mails --------------------------------------------------
    send_abandoned_cart_email = fields.Boolean(
        "Automatically send abandoned checkout emails",
        related="website_id.send_abandoned_cart_email",
        readonly=False,
    )
    cart_followup_count = fields.Integer(
        "Follow-up Reminders",
        related="website_id.cart_followup_count",
    )

    cart_recovery_window_days = fields.Integer(
        related="website_id.cart_recovery_window_days",
        readonly=False,
    )
    # What the reminders brought back in the last CART_RECOVERY_SETTINGS_DAYS days.
    cart_recovery_emailed = fields.Integer(
        "Carts E-mailed", compute="_compute_cart_recovery_figures"
    )
    cart_recovery_clicks = fields.Integer("Resume Clicks", compute="_compute_cart_recovery_figures")
    cart_recovery_recovered = fields.Integer(
        "Carts Recovered", compute="_compute_cart_recovery_figures"
    )
    cart_recovery_revenue = fields.Monetary(
        "Recovered Revenue",
        compute="_compute_cart_recovery_figures",
        currency_field="cart_recovery_currency_id",
    )
    cart_recovery_rate = fields.Float("Recovery Rate (%)", compute="_compute_cart_recovery_figures")
    cart_recovery_currency_id = fields.Many2one(
        "res.currency",
        "Recovered Revenue Currency",
        related="website_id.company_id.currency_id",
    )

    @api.depends("website_id")
    def _compute_cart_recovery_figures(self):
        since = fields.Datetime.now() - timedelta(days=CART_RECOVERY_SETTINGS_DAYS)
        # The settings are the administrator's: the figures of the website they
        # configure, whichever companies they work in right now.
        report = self.env["website.cart.recovery.report"].sudo()
        for settings in self:
            figures = (
                report._get_recovery_figures(settings.website_id, since)
                if settings.website_id
                else {}
            )
            settings.cart_recovery_emailed = figures.get("emailed_cart_count", 0)
            settings.cart_recovery_clicks = figures.get("click_count", 0)
            settings.cart_recovery_recovered = figures.get("recovered_count", 0)
            settings.cart_recovery_revenue = figures.get("recovered_amount", 0.0)
            settings.cart_recovery_rate = figures.get("recovery_rate", 0.0)

    def action_open_cart_recovery_report(self):
        self.ensure_one()
        return self.website_id.action_open_cart_recovery_report()

    def action_open_abandoned_cart_template(self):
        self.ensure_one()
        return self.website_id.action_open_abandoned_cart_template()

    def action_open_cart_reminders(self):
        self.ensure_one()
        return self.website_id.action_open_cart_reminders()
