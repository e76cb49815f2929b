"""2.0.1.0.0 -> 2.0.1.1.0: the automatic abandoned cart e-mail gets its own
template, and its engine its own model.

Until 2.0.1.0.0 the automatic first e-mail used, and replaced, website_sale's
``cart_recovery_mail_template_id``: the e-mail a salesperson sends by hand from
the order then went out with our template, without website_sale's "Resume
order" link. Each website now has ``cart_reminder_mail_template_id`` for the
automatic e-mail, and the manual flow gets website_sale's template back.
"""

import logging

from flectra import SUPERUSER_ID, api

_logger = logging.getLogger(__name__)

MODULE = "website_sale_order_handling"


def _our_template_ids(cr):
    """Our template and the copies the settings made of it for each website.

    A copy has no XML id: it is recognised by the methods only our templates
    call in their body.
    """
    cr.execute(
        """
        SELECT t.id
          FROM mail_template t
          LEFT JOIN ir_model_data d
            ON d.model = 'mail.template' AND d.res_id = t.id AND d.module = %s
         WHERE d.id IS NOT NULL
            OR t.body_html LIKE '%%get_cart_unsubscribe_url%%'
            OR t.body_html LIKE '%%get_cart_resume_url%%'
        """,
        (MODULE,),
    )
    return {row[0] for row in cr.fetchall()}


def _move_cron(env):
    """The cron record is noupdate: point it at the engine's new home."""
    cron = env.ref("%s.ir_cron_send_abandoned_cart_email" % MODULE, raise_if_not_found=False)
    if cron:
        cron.write(
            {
                "model_id": env.ref("%s.model_website_abandoned_cart_mailer" % MODULE).id,
                "code": "model._cron_send_abandoned_cart_email()",
            }
        )


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    _move_cron(env)
    native = env.ref("website_sale.mail_template_sale_cart_recovery", raise_if_not_found=False)
    ours = _our_template_ids(cr)
    cr.execute(
        "SELECT id, cart_recovery_mail_template_id, send_abandoned_cart_email"
        " FROM website ORDER BY id"
    )
    for website_id, recovery_id, sending in cr.fetchall():
        vals = {}
        # The automatic e-mail keeps sending exactly what it sent before:
        # on a website that sends it, whatever the recovery template was;
        # elsewhere, a copy of ours customized for it, if any.
        if recovery_id and (sending or recovery_id in ours):
            vals["cart_reminder_mail_template_id"] = recovery_id
        # The manual flow gets website_sale's template back where ours had replaced it.
        if recovery_id in ours and native:
            vals["cart_recovery_mail_template_id"] = native.id
        if vals:
            env["website"].browse(website_id).write(vals)
            _logger.info("Website %s: abandoned cart e-mail templates moved: %s", website_id, vals)
