from flectra import fields, models


class SaleReturnRequestReject(models.TransientModel):
    _name = "sale.return.request.reject"
    _description = "Reject Return Request"

    request_id = fields.Many2one("sale.return.request", required=True, ondelete="cascade")
    reason = fields.Text(required=True, help="Sent to the customer in the rejection email.")

    def action_reject(self):
        self.ensure_one()
        self.request_id.action_reject(self.reason)
        return {"type": "ir.actions.act_window_close"}
