"""Pair generation, splitting by object and training batches, on hand-made objects.

Positives are two different views of one object; negatives two objects, the requested share of
them from one class; everything deterministic in the seed; no object in two splits; an epoch
takes one pair per object and deals classmates together as asked.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tasks.multiview.objects import UNSPLIT, ViewedObject
from tasks.multiview.pairs import evaluation_pairs, same_class_share, training_pairs, view_index_pairs
from tasks.multiview.sampling import ObjectBatchSampler, group_size
from tasks.multiview.splits import carve, carve_count, final_splits


def make_objects(classes=4, per_class=10, views=6, prefix="") -> list[ViewedObject]:
    return [
        ViewedObject(
            key=f"class{c}/{prefix}object{c}_{k}",
            class_name=f"class{c}",
            views=tuple(f"class{c}/{prefix}object{c}_{k}/view{v}.png" for v in range(views)),
        )
        for c in range(classes)
        for k in range(per_class)
    ]


# --- pairs ----------------------------------------------------------------------------------


def test_positives_are_two_different_views_of_one_object_and_negatives_two_objects():
    objects = make_objects()
    view_owner = {view: item.key for item in objects for view in item.views}
    pairs = evaluation_pairs("val", objects, pairs_per_object=3, same_class_share=0.5, pair_seed=0)
    positives = [pair for pair in pairs if pair.label == 1]
    negatives = [pair for pair in pairs if pair.label == 0]
    assert len(positives) == len(negatives) == 3 * len(objects)  # balanced labels
    for pair in positives:
        assert pair.view_a != pair.view_b
        assert view_owner[pair.view_a] == view_owner[pair.view_b] == pair.object_a == pair.object_b
    for pair in negatives:
        assert view_owner[pair.view_a] == pair.object_a != pair.object_b == view_owner[pair.view_b]
    # an object's positives are distinct unordered view pairs
    per_object = Counter((p.object_a, frozenset((p.view_a, p.view_b))) for p in positives)
    assert max(per_object.values()) == 1
    assert len(training_pairs(objects, 4, pair_seed=0)) == 4 * len(objects)


def test_an_object_with_few_views_gives_every_pair_it_has():
    assert sorted(tuple(sorted(p)) for p in view_index_pairs(3, 10, __import__("random").Random(0))) == [
        (0, 1), (0, 2), (1, 2)
    ]
    two_views = make_objects(classes=1, per_class=3, views=2)
    assert len(training_pairs(two_views, 5, pair_seed=0)) == 3


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 1.0])
def test_the_share_of_same_class_negatives_is_the_one_asked_for(share):
    objects = make_objects(classes=4, per_class=10)
    pairs = evaluation_pairs("test", objects, pairs_per_object=2, same_class_share=share, pair_seed=3)
    negatives = [pair for pair in pairs if pair.label == 0]
    same = sum(pair.class_a == pair.class_b for pair in negatives)
    assert same == round(share * len(negatives))
    assert same_class_share(pairs) == pytest.approx(same / len(negatives))


def test_a_lone_object_of_its_class_gets_a_negative_from_another_class():
    objects = make_objects(classes=3, per_class=1)
    pairs = evaluation_pairs("val", objects, pairs_per_object=1, same_class_share=1.0, pair_seed=0)
    assert all(pair.class_a != pair.class_b for pair in pairs if pair.label == 0)


def test_pairs_are_deterministic_in_the_seed_and_differ_across_seeds_and_splits():
    objects = make_objects()
    first = evaluation_pairs("val", objects, 2, 0.5, pair_seed=7)
    assert evaluation_pairs("val", objects, 2, 0.5, pair_seed=7) == first
    assert evaluation_pairs("val", objects, 2, 0.5, pair_seed=8) != first
    assert evaluation_pairs("test", objects, 2, 0.5, pair_seed=7) != first
    assert training_pairs(objects, 3, pair_seed=7) == training_pairs(objects, 3, pair_seed=7)


# --- splits ---------------------------------------------------------------------------------


def test_carve_counts():
    assert [carve_count(n, 0.2) for n in (0, 1, 2, 3, 5, 8, 100)] == [0, 0, 1, 1, 1, 2, 20]
    assert carve_count(10, 0.0) == 0
    assert carve_count(2, 0.9) == 1  # never a whole class


def test_no_object_is_in_two_splits_and_the_carve_ignores_order_and_seed():
    train = make_objects(classes=3, per_class=10)
    test = make_objects(classes=3, per_class=4, prefix="t")
    splits, notes = final_splits({"train": train, "test": test}, val_fraction=0.2, test_fraction=0.2)
    keys = {split: {item.key for item in objects} for split, objects in splits.items()}
    assert not (keys["train"] & keys["val"] or keys["train"] & keys["test"] or keys["val"] & keys["test"])
    assert (len(keys["train"]), len(keys["val"]), len(keys["test"])) == (24, 6, 12)
    assert keys["test"] == {item.key for item in test}  # the dataset's own test split is kept
    assert notes == ["val: 20% of each class's train objects, carved by object (val_fraction)"]
    reversed_splits, _ = final_splits({"train": train[::-1], "test": test}, 0.2, 0.2)
    assert {item.key for item in reversed_splits["val"]} == keys["val"]


def test_a_dataset_without_a_split_is_carved_into_all_three():
    objects = make_objects(classes=2, per_class=10)
    splits, notes = final_splits({UNSPLIT: objects}, val_fraction=0.2, test_fraction=0.2)
    assert [len(splits[split]) for split in ("train", "val", "test")] == [12, 4, 4]
    assert len(notes) == 2 and notes[0].startswith("test: 20% of each class's objects")
    kept, carved = carve(objects, 0.5)
    assert {item.class_name for item in carved} == {"class0", "class1"} and len(carved) == 10


def test_a_dataset_with_its_own_val_split_is_not_carved():
    objects = make_objects(classes=1, per_class=9)
    own = {"train": objects[:5], "val": objects[5:7], "test": objects[7:]}
    splits, notes = final_splits(own, 0.2, 0.2)
    assert splits == own and notes == []


# --- training batches -----------------------------------------------------------------------


def sampler_for(objects, pairs_per_object=3, batch_size=8, share=0.0, seed=0):
    pairs = training_pairs(objects, pairs_per_object, pair_seed=0)
    sampler = ObjectBatchSampler(
        [pair.object_a for pair in pairs], [pair.class_a for pair in pairs], batch_size, share, seed
    )
    return sampler, pairs


def test_an_epoch_takes_one_pair_per_object_and_the_next_epoch_the_next_pair():
    objects = make_objects(classes=4, per_class=8)  # 32 objects, 3 pairs each
    sampler, pairs = sampler_for(objects, batch_size=8)
    epochs = [list(sampler) for _ in range(3)]
    assert len(sampler) == 4 and all(len(batches) == 4 for batches in epochs)
    chosen_per_epoch = []
    for batches in epochs:
        indices = [index for batch in batches for index in batch]
        assert sorted(pairs[index].object_a for index in indices) == sorted(item.key for item in objects)
        chosen_per_epoch.append(set(indices))
    # over 3 epochs each object trains on each of its 3 pairs
    assert set().union(*chosen_per_epoch) == set(range(len(pairs)))


def test_same_class_share_puts_classmates_together_and_zero_leaves_batches_random():
    objects = make_objects(classes=8, per_class=16)

    def classmate_share(share: float) -> float:
        sampler, pairs = sampler_for(objects, batch_size=16, share=share, seed=1)
        same = total = 0
        for batch in sampler:
            classes = [pairs[index].class_a for index in batch]
            for k, own in enumerate(classes):
                others = classes[:k] + classes[k + 1 :]
                same += sum(other == own for other in others)
                total += len(others)
        return same / total

    assert group_size(0.5, 16) == 9 and group_size(0.0, 16) == 1
    random_share = classmate_share(0.0)
    assert random_share < 0.25  # 8 classes: ~1/8 by chance
    assert classmate_share(0.5) > 0.4
    assert classmate_share(1.0) > 0.9


def test_batches_are_deterministic_in_the_seed():
    objects = make_objects()
    first, _ = sampler_for(objects, share=0.3, seed=5)
    second, _ = sampler_for(objects, share=0.3, seed=5)
    other, _ = sampler_for(objects, share=0.3, seed=6)
    assert list(first) == list(second) and list(first) != list(other)


def test_a_tiny_last_batch_is_dropped_and_a_small_split_is_kept_whole():
    sampler, _ = sampler_for(make_objects(classes=1, per_class=17), batch_size=8)
    assert len(sampler) == 2 and [len(batch) for batch in sampler] == [8, 8]  # 17 = 2 x 8 + 1
    sampler, _ = sampler_for(make_objects(classes=1, per_class=10), batch_size=8)
    assert [len(batch) for batch in sampler] == [8, 2]


def test_max_objects_per_split_pairs_the_same_subset_whatever_the_seed(tmp_path):
    from tasks.multiview import MultiviewConfig, data
    from tests.fixtures.multiview.trees import write_mvcnn_tree

    write_mvcnn_tree(tmp_path)  # train 16, val 4, test 12 objects

    def paired_objects(pair_seed: int) -> dict[str, set[str]]:
        plan = data.plan_dataset(tmp_path, MultiviewConfig(max_objects_per_split=5, pair_seed=pair_seed))
        assert plan.report.splits == {"train": 16, "val": 4, "test": 12}
        assert any("train 5 of 16, val 4 of 4, test 5 of 12" in line for line in plan.report.sources)
        return {
            split: {pair.object_a for pair in pairs if pair.label == 1}
            for split, pairs in plan.pairs.items()
        }

    first = paired_objects(0)
    assert [len(first[split]) for split in ("train", "val", "test")] == [5, 4, 5]
    assert paired_objects(1) == first
