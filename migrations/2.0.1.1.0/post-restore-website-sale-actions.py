"""Until 2.0.1.0.0, the add-on rewrote the whole context of three website_sale
actions to show its status column. It now adds a list view to them instead:
give them back their context, minus the key the add-on had added."""

import ast

ACTIONS = (
    "action_orders_ecommerce",
    "action_unpaid_orders_ecommerce",
    "action_view_unpaid_quotation_tree",
)


def migrate(cr, version):
    if not version:
        return
    cr.execute(
        """
        SELECT a.id, a.context
          FROM ir_act_window a
          JOIN ir_model_data d ON d.model = 'ir.actions.act_window' AND d.res_id = a.id
         WHERE d.module = 'website_sale' AND d.name IN %s
        """,
        [ACTIONS],
    )
    for action_id, context in cr.fetchall():
        try:
            values = ast.literal_eval(context or "{}")
        except (ValueError, SyntaxError):
            continue  # changed by hand into something else: leave it
        if not isinstance(values, dict) or "show_ecommerce_status" not in values:
            continue
        values.pop("show_ecommerce_status")
        cr.execute("UPDATE ir_act_window SET context = %s WHERE id = %s", [repr(values), action_id])
