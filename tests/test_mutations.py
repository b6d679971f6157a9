"""The planted breakages of tests/mutations.py still fit the code: each text to break is there once, and each test
named to catch it exists. The mutation run itself takes half an hour; a stale entry would stop it midway, so this
catches one in the normal suite instead."""

import re
from pathlib import Path

import pytest

from tests.mutations import MUTATIONS

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("name", MUTATIONS)
def test_each_mutation_breaks_text_that_is_there_once(name):
    file, original, broken, _ = MUTATIONS[name]
    assert original != broken
    assert (ROOT / file).read_text().count(original) == 1, f"{name}: {file} no longer holds {original!r} once"


@pytest.mark.parametrize("name", MUTATIONS)
def test_each_mutation_names_tests_that_exist(name):
    tests = MUTATIONS[name][3]
    assert tests, f"{name} names no test to catch it"
    for target in tests:
        path, _, test = target.partition("::")
        assert (ROOT / path).is_file(), f"{name}: no {path}"
        if test:
            function = re.sub(r"\[.*\]$", "", test)  # a parametrized case names its function
            assert re.search(rf"^def {function}\(", (ROOT / path).read_text(), re.M), f"{name}: no {target}"
