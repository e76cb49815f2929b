from flectra import api, models
from flectra.exceptions import UserError


class ReportReturnSlip(models.AbstractModel):
    """The return slip's values: printed from the backend, the portal or the
    approval e-mail, a slip exists only for a request whose parcel is awaited."""

    _name = "report.website_sale_order_handling.report_return_slip"
    _description = "Return Slip"

    @api.model
    def _get_report_values(self, docids, data=None):
        requests = self.env["sale.return.request"].browse(docids)
        for request in requests:
            refusal = request._get_return_slip_refusal()
            if refusal:
                raise UserError(refusal)
        return {
            "doc_ids": docids,
            "doc_model": "sale.return.request",
            "docs": requests,
        }
