from flectra import SUPERUSER_ID, api


def post_init_hook(cr, registry):
    """One-time data work of the first install (never run again on upgrades)."""
    backfill_cart_last_activity(cr)
    # Payments captured before the add-on are refunded as they stand.
    api.Environment(cr, SUPERUSER_ID, {})["payment.transaction"]._seal_existing_captures()


def backfill_cart_last_activity(cr):
    """Carts older than the add-on get their last change as last activity,
    so the Abandoned Carts menu keeps showing them."""
    cr.execute(
        """
        UPDATE sale_order
           SET cart_last_activity = COALESCE(write_date, date_order)
         WHERE cart_last_activity IS NULL AND website_id IS NOT NULL AND state = 'draft'
        """
    )
