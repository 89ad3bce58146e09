"""sesn: scale-equivariant steerable networks, with measured equivariance.

Subpackages, in dependency order: ``basis`` -> ``nn`` -> ``models`` ->
``equivariance`` / ``report``.
"""

__version__ = "0.1.0"
