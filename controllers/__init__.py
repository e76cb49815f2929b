from . import cart_recovery
