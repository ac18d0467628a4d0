"""What a trial runs. `TRAINABLES` maps a config name to a Ray Tune function trainable; a
trainable may carry an `Options` pydantic model that validates `trainable.options` up front."""

from trainables.curve_replay import curve
from trainables.tabular import tabular
from trainables.torch_loop import train as torch_train

TRAINABLES = {
    "torch": torch_train,
    "tabular": tabular,
    "curve": curve,
}

__all__ = ["TRAINABLES"]
