"""The one error a model or artifact folder raises."""


class ModelError(Exception):
    """A model or artifact folder that cannot be used; the message says why and what to do."""
