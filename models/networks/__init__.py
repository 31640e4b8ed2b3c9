"""Networks split by concern; import the constructors from here."""
from .discriminators import define_discriminator
from .generators import define_generator
from .heads import define_head
from .nafnet import NafnetGenerator
from .negative import NegativeGenerator

__all__ = ["define_discriminator", "define_generator", "define_head", "NafnetGenerator", "NegativeGenerator"]
