"""Networks split by concern; import the constructors from here."""
from .discriminators import define_discriminator
from .generators import define_generator, generator_from_options
from .heads import define_head
from .init import init_weights
from .schedulers import get_scheduler, iteration_budget

__all__ = ["define_discriminator", "define_generator", "generator_from_options", "define_head", "init_weights", "get_scheduler",
           "iteration_budget"]
