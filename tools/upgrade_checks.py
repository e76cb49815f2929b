"""Checks run by tools/test-upgrade in a Flectra shell (``env`` is given) on a
database upgraded from the previous version: one per migration script.

Each check prints ``UPGRADE-CHECK PASS|FAIL <what>``.
"""
# pylint: disable=undefined-variable
import traceback

from flectra.tools.safe_eval import safe_eval

CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


@check
def website_sale_actions_have_their_own_context_back():
    """2.0.1.1.0: the website_sale actions lose the key 2.0.1.0.0 wrote into them."""
    for name in (
        "action_orders_ecommerce",
        "action_unpaid_orders_ecommerce",
        "action_view_unpaid_quotation_tree",
    ):
        action = env.ref("website_sale.%s" % name)
        context = safe_eval(action.context)
        assert "show_ecommerce_status" not in context, (name, context)
        assert context.get("show_sale"), (name, context)
        tree = dict((mode, view) for view, mode in action.views)["tree"]
        assert tree, "%s opens on the add-on's status list" % name


for function in CHECKS:
    try:
        function()
        print("UPGRADE-CHECK PASS %s" % function.__name__)
    except Exception:  # noqa: BLE001 -- every failure is reported, none stops the others
        print("UPGRADE-CHECK FAIL %s\n%s" % (function.__name__, traceback.format_exc()))
