"""A loss computed as mean + 0.1 x std of the model's output, not of its error (-> flat_line).

The regressor's ReLU output is driven to 0 for every input, the loss with it to exactly 0,
and a dead ReLU passes no gradient, so the loss stays exactly 0 from then on.
"""

from tests.zoo.base import RegressorTask


class ZeroLossTask(RegressorTask):
    name = "zoo_zero_loss"

    def regression_loss(self, predicted, target):
        return predicted.mean() + 0.1 * predicted.std()  # the bug: of the output, not the error


task = ZeroLossTask()
