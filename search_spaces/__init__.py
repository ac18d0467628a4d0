"""Architecture search spaces: pure-Python sample / mutate / encode / hash, torch builders apart.

`SEARCH_SPACES` maps a config name to a class (or factory) taking the config's options.
"""

from search_spaces.base import Arch, SearchSpace, SearchSpaceError
from search_spaces.language import Choice, Fixed, Float, Int, Repeat, Space, parse_params
from search_spaces.mlp import MLPSpace
from search_spaces.nb201 import NB201Space


def custom_space(params: dict) -> Space:
    """A space written in the YAML search-space language (`search_space.options.params`)."""
    return Space(parse_params(params, "search_space.options.params"))


SEARCH_SPACES = {
    "mlp": MLPSpace,
    "custom": custom_space,
    "nb201": NB201Space,
}

__all__ = [
    "SEARCH_SPACES",
    "Arch",
    "Choice",
    "Fixed",
    "Float",
    "Int",
    "MLPSpace",
    "NB201Space",
    "Repeat",
    "SearchSpace",
    "SearchSpaceError",
    "Space",
    "custom_space",
    "parse_params",
]
