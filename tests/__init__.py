from . import test_smoke
from . import test_refund_order
from . import test_refund_lines
from . import test_refund_stripe
from . import test_refund_concurrency
from . import test_refund_acquirer
from . import test_refund_tour
