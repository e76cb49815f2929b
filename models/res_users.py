from flectra import models


class ResUsers(models.Model):
    _inherit = "res.users"

    def _can_take_web_orders_of(self, company):
        """An active internal user allowed in ``company``: the web orders they
        are given must be orders they can open."""
        if not self:
            return False
        self.ensure_one()
        return self.active and not self.share and company in self.company_ids
