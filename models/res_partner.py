from flectra import models


class ResPartner(models.Model):
    _inherit = "res.partner"

    def init(self):
        # Carts are matched by address (a guest gets a new contact at each
        # checkout): the abandoned cart cron and the recovery of a confirmed
        # order look partners up by normalized address, which mail stores
        # without an index.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS res_partner_wsoh_email_normalized_index
                ON res_partner (email_normalized)
             WHERE email_normalized IS NOT NULL
            """
        )
