"""Architecture search spaces: pure-Python sample / mutate / encode / hash, torch builders apart.

`SEARCH_SPACES` maps a config name to a class (or factory) taking the config's options.
"""

from search_spaces.base import Arch, SearchSpace, SearchSpaceError
from search_spaces.candidates import CandidateSpace, table_space
from search_spaces.conv import ConvSpace
from search_spaces.language import Choice, Fixed, Float, Int, Repeat, Space, parse_params
from search_spaces.mlp import MLPSpace
from search_spaces.nb201 import NB201Space
from search_spaces.recurrent import RecurrentSpace
from search_spaces.transformer import TransformerSpace


def custom_space(params: dict) -> Space:
    """A space written in the YAML search-space language (`search_space.options.params`)."""
    return Space(parse_params(params, "search_space.options.params"))


SEARCH_SPACES = {
    "mlp": MLPSpace,
    "custom": custom_space,
    "nb201": NB201Space,
    "conv": ConvSpace,
    "recurrent": RecurrentSpace,
    "transformer": TransformerSpace,
    "table": table_space,
}

__all__ = [
    "SEARCH_SPACES",
    "Arch",
    "CandidateSpace",
    "Choice",
    "ConvSpace",
    "Fixed",
    "Float",
    "Int",
    "MLPSpace",
    "NB201Space",
    "RecurrentSpace",
    "Repeat",
    "SearchSpace",
    "SearchSpaceError",
    "Space",
    "TransformerSpace",
    "custom_space",
    "parse_params",
]
