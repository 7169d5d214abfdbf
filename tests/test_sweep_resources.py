"""`--resource-per-trial NAME=AMOUNT`: parsed into what Ray reserves per trial, and refused in
one line when malformed, when it names a resource with a flag of its own, or when no node of
the cluster has that much of it."""

import pytest

from orchestrator.sweep_input import (
    SweepOptions, check_resources, parse_resource_per_trial, trial_resources)
from orchestrator.user_errors import UsageError

NODES = [{"CPU": 4.0, "GPU": 1.0, "slot": 2.0, "accelerator_type:A100": 1.0}, {"CPU": 8.0}]


def test_a_custom_resource_is_reserved_per_trial_beside_cpu_and_gpu():
    options = SweepOptions(name="s", cpus_per_trial=2, gpus_per_trial=0.5, resources_per_trial=(
        parse_resource_per_trial("slot=1"), parse_resource_per_trial("accelerator_type:A100=0.25")))
    assert trial_resources(options) == {"cpu": 2, "gpu": 0.5, "slot": 1.0, "accelerator_type:A100": 0.25}
    check_resources(options, NODES)  # a node has all of it


@pytest.mark.parametrize("text", ["slot", "slot=", "=1", "slot=two", "slot=0", "slot=-1", "slot=nan"])
def test_anything_but_name_equals_a_positive_amount_is_refused(text):
    with pytest.raises(UsageError, match="expected NAME=AMOUNT with a positive AMOUNT"):
        parse_resource_per_trial(text)


@pytest.mark.parametrize("text, flag", [("CPU=1", "--cpus-per-trial"), ("gpu=1", "--gpus-per-trial"),
                                        ("memory=1000", "Ray manages it")])
def test_a_resource_with_its_own_flag_is_refused_with_that_flag(text, flag):
    with pytest.raises(UsageError, match=f"not a custom resource; .*{flag}"):
        parse_resource_per_trial(text)


def test_a_resource_no_node_has_is_refused_by_name():
    options = SweepOptions(name="s", resources_per_trial=(("H100", 1.0),))
    with pytest.raises(UsageError, match="no node of the cluster has the resource 'H100'"):
        check_resources(options, NODES)


def test_more_of_a_resource_than_any_node_has_is_refused_with_the_largest():
    options = SweepOptions(name="s", resources_per_trial=(("slot", 3.0),))
    with pytest.raises(UsageError, match=r"--resource-per-trial slot=3 is more than any node has "
                                         r"\(largest node: 2 slot\)"):
        check_resources(options, NODES)
