from flectra import fields, models, tools

from ..models.sale_return_request import STATES


class SaleReturnReport(models.Model):
    """Returned quantities by product and reason: one row per request line.

    Quantities are in the product's unit. Every request is a row, whatever its
    state; the menu's default filter leaves out rejected and cancelled ones,
    whose products did not (or will not) come back.
    """

    _name = "sale.return.report"
    _description = "Returns Analysis"
    _auto = False
    _rec_name = "request_id"
    _order = "date desc"

    request_id = fields.Many2one("sale.return.request", string="Return Request", readonly=True)
    date = fields.Datetime(string="Requested on", readonly=True)
    order_id = fields.Many2one("sale.order", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Customer", readonly=True)
    commercial_partner_id = fields.Many2one("res.partner", string="Customer Company", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    website_id = fields.Many2one("website", readonly=True)
    state = fields.Selection(STATES, readonly=True)
    user_id = fields.Many2one("res.users", string="Responsible", readonly=True)
    order_user_id = fields.Many2one("res.users", string="Salesperson", readonly=True)
    product_id = fields.Many2one("product.product", readonly=True)
    product_tmpl_id = fields.Many2one("product.template", string="Product Template", readonly=True)
    categ_id = fields.Many2one("product.category", string="Product Category", readonly=True)
    reason_id = fields.Many2one("sale.return.reason", readonly=True)
    product_qty = fields.Float(
        string="Requested Qty", digits="Product Unit of Measure", readonly=True
    )
    qty_received = fields.Float(
        string="Received Qty", digits="Product Unit of Measure", readonly=True
    )
    qty_refunded = fields.Float(
        string="Refunded Qty", digits="Product Unit of Measure", readonly=True
    )
    resolution = fields.Selection(
        [("refund", "Refund"), ("exchange", "Exchange")], string="Refund or Exchange", readonly=True
    )
    exchange_product_id = fields.Many2one("product.product", string="Exchanged For", readonly=True)
    qty_exchanged = fields.Float(
        string="Exchanged Qty", digits="Product Unit of Measure", readonly=True
    )

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        # Quantities converted to the product's unit as sale.report does;
        # received = the done moves of the request's return transfers for the line.
        self.env.cr.execute(
            """
            CREATE OR REPLACE VIEW %s AS (
                SELECT line.id AS id,
                       line.request_id,
                       request.create_date AS date,
                       request.order_id,
                       request.partner_id,
                       request.commercial_partner_id,
                       request.company_id,
                       request.website_id,
                       request.state,
                       request.user_id,
                       sale.user_id AS order_user_id,
                       line.product_id,
                       product.product_tmpl_id,
                       template.categ_id,
                       line.reason_id,
                       line.quantity / line_uom.factor * product_uom.factor AS product_qty,
                       COALESCE(received.qty, 0.0) AS qty_received,
                       COALESCE(line.quantity_refunded, 0.0)
                           / line_uom.factor * product_uom.factor AS qty_refunded,
                       line.resolution,
                       line.exchange_product_id,
                       CASE WHEN line.resolution = 'exchange'
                                 AND request.state IN ('approved', 'received', 'refunded',
                                                       'exchanged')
                            THEN line.quantity / line_uom.factor * product_uom.factor
                            ELSE 0.0 END AS qty_exchanged
                  FROM sale_return_request_line line
                  JOIN sale_return_request request ON request.id = line.request_id
                  JOIN sale_order sale ON sale.id = request.order_id
                  JOIN sale_order_line sale_line ON sale_line.id = line.sale_line_id
                  JOIN uom_uom line_uom ON line_uom.id = sale_line.product_uom
                  JOIN product_product product ON product.id = line.product_id
                  JOIN product_template template ON template.id = product.product_tmpl_id
                  JOIN uom_uom product_uom ON product_uom.id = template.uom_id
                  LEFT JOIN LATERAL (
                      SELECT SUM(move.product_qty) AS qty
                        FROM stock_move move
                        JOIN stock_picking picking ON picking.id = move.picking_id
                       WHERE picking.return_request_id = request.id
                         AND move.sale_line_id = line.sale_line_id
                         AND move.state = 'done'
                  ) received ON TRUE
            )
            """
            % self._table
        )
