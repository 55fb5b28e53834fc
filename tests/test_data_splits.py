"""Split sizes and contents of every dataset in the real offline mirror."""
from __future__ import annotations

import pickle
from collections import Counter

import pytest
from torch.utils.data import DataLoader, Subset

from acbench.data import MWPProblem, get_declaration, load_split
from data_fixtures import data_root  # noqa: F401  (fixture)

SIZES = {
    "math23k": {"train": 21162, "valid": 1000, "test": 1000, "trainvalid": 22162, "all": 23162},
    "asdiv_a": {"train": 974, "valid": 122, "test": 122},
    "cifar10_jpeg": {"train": 50000, "test": 10000},
}
# What the mirror's ASDiv-A folds hold (unequal: the last fold takes the remainder).
ASDIV_FOLDS = {"train": [980, 980, 980, 980, 952], "test": [238, 238, 238, 238, 266]}


@pytest.mark.parametrize("name, split", [(n, s) for n, splits in SIZES.items() for s in splits])
def test_split_sizes(data_root, name, split):
    assert len(load_split(name, split, data_root)) == SIZES[name][split]
    assert get_declaration(name).split(split)[0] == SIZES[name][split]


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("fold", range(5))
def test_asdiv_fold_sizes(data_root, split, fold):
    assert len(load_split("asdiv_a", split, data_root, fold=fold)) == ASDIV_FOLDS[split][fold]


def _ids(problems):
    return [p.id for p in problems]


@pytest.mark.parametrize("name", ["math23k", "asdiv_a"])
def test_mwp_fields_are_non_empty_strings(data_root, name):
    for split in SIZES[name]:
        for p in load_split(name, split, data_root):
            assert isinstance(p, MWPProblem) and p.dataset == name
            assert all(isinstance(v, str) and v.strip() for v in (p.id, p.text, p.equation, p.answer)), p


def test_math23k_split_structure(data_root):
    split = {s: _ids(load_split("math23k", s, data_root)) for s in SIZES["math23k"]}
    train, valid, test = set(split["train"]), set(split["valid"]), set(split["test"])
    assert not (train & valid or train & test or valid & test)
    assert train | valid | test == set(split["all"])
    assert set(split["trainvalid"]) == train | valid
    first = load_split("math23k", "all", data_root)[0]
    assert (first.id, first.equation, first.answer) == ("1", "x=(11-1)*2", "20")


def test_asdiv_raw_fields(data_root):
    first = load_split("asdiv_a", "train", data_root)[0]
    assert first.id == "nluds-1862"
    assert first.text == ("Cody had a bag of marbles. Later he gave five to his brother. Now Cody has "
                          "seven marbles. How many marbles did Cody have to start with?")
    assert (first.equation, first.answer) == ("5+7=12", "12 (marbles)")


def test_asdiv_folds_cover_all_problems_and_test_folds_are_disjoint(data_root):
    every = set()
    for split in ("train", "valid", "test"):
        every |= set(_ids(load_split("asdiv_a", split, data_root)))
    assert len(every) == 1218
    tests = []
    for k in range(5):
        train = set(_ids(load_split("asdiv_a", "train", data_root, fold=k)))
        test = set(_ids(load_split("asdiv_a", "test", data_root, fold=k)))
        assert not train & test
        assert train | test == every
        tests.append(test)
    assert sum(map(len, tests)) == len(set().union(*tests)) == 1218


def test_cifar10_jpeg_images_and_labels(data_root):
    test = load_split("cifar10_jpeg", "test", data_root)
    assert test.classes[0] == "airplane" and test.classes[-1] == "truck"
    assert Counter(test.targets) == {k: 1000 for k in range(10)}
    img, label = test[0]
    assert (img.mode, img.size, label) == ("RGB", (32, 32), 0)
    assert test[-1][1] == 9
    train = load_split("cifar10_jpeg", "train", data_root)
    assert Counter(train.targets) == {k: 5000 for k in range(10)}


def test_cifar10_jpeg_pickles_without_zip_handle_and_works_in_workers(data_root):
    test = load_split("cifar10_jpeg", "test", data_root)
    test[0]  # opens the zip in this process
    clone = pickle.loads(pickle.dumps(test))
    assert clone._zip is None and clone[5][1] == test[5][1]
    loader = DataLoader(Subset(test, range(0, 10000, 1250)), batch_size=4, num_workers=2,
                        collate_fn=lambda batch: [(img.size, label) for img, label in batch])
    seen = [item for batch in loader for item in batch]
    assert seen == [((32, 32), k * 1250 // 1000) for k in range(8)]
