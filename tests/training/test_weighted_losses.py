"""The weighted sum of named loss terms: the weights pick the terms and their order of addition."""
import pytest
import torch

from training.weighted_losses import weighted_sum


def test_sum_of_weighted_terms_with_gradients():
    click = torch.tensor(2.0, requires_grad=True)
    quality = torch.tensor(3.0, requires_grad=True)
    total = weighted_sum({"click": click, "quality": quality, "unused": torch.tensor(100.0)},
                         {"click": 0.5, "quality": 2.0})
    assert total.item() == 7.0    # the term without a weight is left out
    total.backward()
    assert click.grad.item() == 0.5 and quality.grad.item() == 2.0


def test_terms_are_added_left_to_right_in_the_weights_order():
    """float32 addition is not associative: (1e8 - 1e8) + 1 = 1, (1 + 1e8) - 1e8 = 0."""
    losses = {"big": torch.tensor(1e8), "minus_big": torch.tensor(-1e8), "one": torch.tensor(1.0)}
    assert weighted_sum(losses, {"big": 1.0, "minus_big": 1.0, "one": 1.0}).item() == 1.0
    assert weighted_sum(losses, {"one": 1.0, "big": 1.0, "minus_big": 1.0}).item() == 0.0


def test_a_weight_without_its_loss_and_no_weight_at_all_are_errors():
    with pytest.raises(ValueError, match=r"\['quality'\] are not among the losses \['click'\]"):
        weighted_sum({"click": torch.tensor(1.0)}, {"click": 1.0, "quality": 1.0})
    with pytest.raises(ValueError, match="no weighted loss term"):
        weighted_sum({"click": torch.tensor(1.0)}, {})
