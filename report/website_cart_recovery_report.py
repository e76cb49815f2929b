from flectra import api, fields, models, tools

from ..models.website_cart_recovery_event import EVENT_KINDS

# The measures the recovery rate is the ratio of, under names no field has.
RATE_RECOVERED = "_rate_recovered"
RATE_EMAILED = "_rate_emailed"


class WebsiteCartRecoveryReport(models.Model):
    """Website > Reporting > Abandoned Carts: one row per recovery event.

    Recovered revenue is the recovered order's total in its company's
    currency, converted at the order's rate as Flectra's Sales Analysis does
    (sale.order.currency_rate): websites of companies with different
    currencies are only comparable per company. It follows the order: edited,
    it changes; cancelled, the recovery leaves the report (and comes back if
    the order is confirmed again).
    """

    _name = "website.cart.recovery.report"
    _description = "Abandoned Cart Recovery Analysis"
    _auto = False
    _rec_name = "date"
    _order = "date desc"

    date = fields.Datetime(readonly=True)
    kind = fields.Selection(EVENT_KINDS, "Event", readonly=True)
    website_id = fields.Many2one("website", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    cart_id = fields.Many2one("sale.order", "Reminded Cart", readonly=True)
    order_id = fields.Many2one("sale.order", "Recovered Order", readonly=True)
    partner_id = fields.Many2one("res.partner", "Customer", readonly=True)
    step = fields.Integer(
        "E-mail Step",
        readonly=True,
        group_operator=False,
        help="1: the first abandoned cart e-mail, 2: the first follow-up reminder, ... "
        "Clicks and recoveries count for the last e-mail the cart had received.",
    )
    email_count = fields.Integer("E-mails Sent", readonly=True)
    emailed_cart_count = fields.Integer(
        "Carts E-mailed",
        readonly=True,
        group_operator="count_distinct",
        help="Carts that received an abandoned cart e-mail, each counted once.",
    )
    click_count = fields.Integer("Resume Clicks", readonly=True)
    recovered_count = fields.Integer("Carts Recovered", readonly=True)
    recovered_amount = fields.Monetary(
        "Recovered Revenue", readonly=True, currency_field="currency_id"
    )
    recovery_rate = fields.Float(
        "Recovery Rate (%)",
        readonly=True,
        group_operator="sum",
        help="Carts recovered per 100 carts e-mailed, in the same group.",
    )

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            """
            CREATE OR REPLACE VIEW website_cart_recovery_report AS (
                SELECT e.id,
                       e.date,
                       e.kind,
                       e.website_id,
                       e.company_id,
                       company.currency_id,
                       e.cart_id,
                       e.order_id,
                       cart.partner_id,
                       e.step,
                       CASE WHEN e.kind = 'email' THEN 1 ELSE 0 END AS email_count,
                       CASE WHEN e.kind = 'email' THEN e.cart_id END AS emailed_cart_count,
                       CASE WHEN e.kind = 'click' THEN 1 ELSE 0 END AS click_count,
                       CASE WHEN e.kind = 'recovery' THEN 1 ELSE 0 END AS recovered_count,
                       CASE WHEN e.kind = 'recovery'
                            THEN recovered.amount_total
                                 / COALESCE(NULLIF(recovered.currency_rate, 0), 1.0)
                            ELSE 0 END AS recovered_amount,
                       0.0::double precision AS recovery_rate
                  FROM website_cart_recovery_event e
                  JOIN res_company company ON company.id = e.company_id
                  JOIN sale_order cart ON cart.id = e.cart_id
             LEFT JOIN sale_order recovered ON recovered.id = e.order_id
                 WHERE e.kind != 'recovery' OR recovered.state IN ('sale', 'done')
            )
            """
        )

    @api.model
    def read_group(self, domain, fields, groupby, offset=0, limit=None, orderby=False, lazy=True):
        """The recovery rate of a group is the ratio of its sums, never a sum
        or an average of rates: carts recovered / carts e-mailed."""
        # The view reads other tables: what the ORM still holds goes first.
        self.env["sale.order"].flush(["state", "amount_total", "currency_rate", "partner_id"])
        self.env["website.cart.recovery.event"].flush()
        rate_specs = [spec for spec in fields or [] if spec.split(":")[0] == "recovery_rate"]
        if not rate_specs:
            return super().read_group(
                domain, fields, groupby, offset=offset, limit=limit, orderby=orderby, lazy=lazy
            )
        fields = [spec for spec in fields if spec not in rate_specs] + [
            "%s:sum(recovered_count)" % RATE_RECOVERED,
            "%s:count_distinct(emailed_cart_count)" % RATE_EMAILED,
        ]
        groups = super().read_group(
            domain, fields, groupby, offset=offset, limit=limit, orderby=orderby, lazy=lazy
        )
        for group in groups:
            recovered = group.pop(RATE_RECOVERED, 0) or 0
            emailed = group.pop(RATE_EMAILED, 0) or 0
            group["recovery_rate"] = 100.0 * recovered / emailed if emailed else 0.0
        return groups

    @api.model
    def _get_recovery_figures(self, website, date_from, date_to=None):
        """The report's totals for ``website`` from ``date_from`` (until
        ``date_to``, excluded): the line of the Website settings."""
        domain = [("website_id", "=", website.id), ("date", ">=", date_from)]
        if date_to:
            domain.append(("date", "<", date_to))
        names = [
            "email_count",
            "emailed_cart_count",
            "click_count",
            "recovered_count",
            "recovered_amount",
            "recovery_rate",
        ]
        total = self.read_group(domain, names, [], lazy=False)[0]
        return {name: total.get(name) or 0 for name in names}
