"""vchat: a terminal assistant where a language model drives visual foundation models."""

__version__ = "0.1.0"
