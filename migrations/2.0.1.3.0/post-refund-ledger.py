"""2.0.1.2.0 -> 2.0.1.3.0: every refund door reads one ledger.

Until 2.0.1.2.0 a refund kept what it gave back per order line in a JSON
column of its own (payment_transaction.refund_line_quantities), and an
amount-only refund kept nothing. Each refund now writes lines of
sale.order.refund.line: this script writes them for the refunds made
before, from that column (read here, before Flectra drops it at the end of
the upgrade), or an amount line for a refund without it; a refund that paid
a return request is tied to that request.
"""

import json
import logging

from flectra import SUPERUSER_ID, api
from flectra.tools.sql import column_exists

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    if not version or not column_exists(cr, "payment_transaction", "refund_line_quantities"):
        return
    # Imported here: the module's code is loaded once its models are.
    from flectra.addons.website_sale_order_handling.models.refund_engine import (
        as_refund_engine,
    )

    env = api.Environment(cr, SUPERUSER_ID, {})
    cr.execute(
        """
        SELECT tx.id, tx.refund_line_quantities
          FROM payment_transaction tx
         WHERE tx.is_refund
           AND NOT EXISTS (SELECT 1 FROM sale_order_refund_line l WHERE l.refund_id = tx.id)
         ORDER BY tx.id
        """
    )
    rows = cr.fetchall()
    Ledger = as_refund_engine(env["sale.order.refund.line"])
    done = 0
    for refund_id, quantities in rows:
        refund = env["payment.transaction"].browse(refund_id)
        order = refund._get_refunded_orders()[:1]
        if not order:
            continue
        lines = {
            env["sale.order.line"].browse(int(line_id)): qty
            for line_id, qty in json.loads(quantities or "{}").items()
        }
        lines = {line: qty for line, qty in lines.items() if line.exists() and qty}
        request = env["sale.return.request"].search(
            [("refund_transaction_ids", "in", refund.ids)], limit=1
        )
        vals = Ledger._prepare_lines(order, lines, -refund.amount, request)
        Ledger.create([dict(v, refund_id=refund.id) for v in vals])
        done += 1
    _logger.info("Refund ledger written for %s refunds made before 2.0.1.3.0", done)
