"""Networks split by concern; import the constructors from here."""
from .discriminators import define_discriminator
from .generators import define_generator
from .heads import define_head
from .negative import NegativeGenerator

__all__ = ["define_discriminator", "define_generator", "define_head", "NegativeGenerator"]
