"""Adam with a per-variable learning-rate multiplier, for layer-wise LR decay in phase 2."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="shoulders")
class LayerwiseAdam(keras.optimizers.Adam):
    """Adam where variable ``v`` steps at ``learning_rate * multipliers.get(v.path, 1.0)``.

    Lower blocks (more general features) move less than the top ones: scaling the gradient would
    not do this, since Adam is invariant to gradient scale; scaling the step does.
    """

    def __init__(self, learning_rate: float = 1e-5, multipliers: dict[str, float] | None = None, **kwargs) -> None:
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.multipliers = dict(multipliers or {})

    def build(self, variables) -> None:
        super().build(variables)
        # Backends hand update_step their own variable objects, so look factors up by index.
        self._factors = [self.multipliers.get(variable.path, 1.0) for variable in variables]

    def update_step(self, gradient, variable, learning_rate):
        factor = self._factors[self._get_variable_index(variable)]
        return super().update_step(gradient, variable, learning_rate * factor)

    def get_config(self) -> dict:
        return {**super().get_config(), "multipliers": self.multipliers}
