"""Interchangeable GL backends with one interface (see ``base.Backend``)."""
