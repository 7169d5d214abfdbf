"""A contrastive loss with the positive term only, -log(exp(s/t) + eps) (-> impossible_value).

Without the negatives in the denominator the "InfoNCE" is -s/t, which goes below 0 as soon as
the matching pairs' cosine is positive; the task declares train/loss >= 0, as any InfoNCE does.
"""

import torch

from tests.zoo.base import MatcherTask

EPS = 1e-8


class WrongInfoNCETask(MatcherTask):
    name = "zoo_wrong_infonce"

    def matching_loss(self, image_embeddings, attribute_embeddings, config):
        positive = (image_embeddings * attribute_embeddings).sum(-1)
        # the bug: no sum over the negatives' exp(s/t) in the denominator
        return -torch.log(torch.exp(positive / config.temperature) + EPS).mean()


task = WrongInfoNCETask()
