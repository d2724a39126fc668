"""rectlab.registry.Registry: the name -> object map behind activations, models, datasets and studies."""

from __future__ import annotations

import pytest

from rectlab.registry import Registry, UnknownNameError


def make() -> Registry:
    reg: Registry = Registry("widget")
    reg.register("leaky-relu", dict)

    @reg.register("prelu")
    def prelu(channels: int = 1) -> tuple[str, int]:
        return ("prelu", channels)

    reg.register("not-callable", 42)
    return reg


def test_register_get_create_and_listing() -> None:
    reg = make()
    assert reg.get("prelu").__name__ == "prelu"  # the decorator returns the function itself
    assert reg.create("prelu", channels=3) == ("prelu", 3)
    assert reg.create("leaky-relu", a=1) == {"a": 1}
    assert reg.names() == ["leaky-relu", "not-callable", "prelu"] == list(reg)
    assert len(reg) == 3
    assert [name for name, _ in reg.items()] == reg.names()


def test_names_are_normalised() -> None:
    reg = make()
    assert reg.get(" Leaky_ReLU ") is dict
    assert "LEAKY_RELU" in reg and "leaky-relu" in reg
    assert "gelu" not in reg and 3 not in reg and None not in reg
    with pytest.raises(ValueError, match="already registered"):
        reg.register("Leaky_ReLU", list)  # the same name once normalised


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_names_must_be_non_empty_strings(bad) -> None:
    with pytest.raises(TypeError, match="non-empty strings"):
        make().get(bad)


def test_duplicates_are_refused_unless_overridden() -> None:
    reg = make()
    with pytest.raises(ValueError, match="widget 'prelu' is already registered; pass override=True"):
        reg.register("prelu", list)
    reg.register("prelu", list, override=True)
    assert reg.get("prelu") is list and len(reg) == 3


def test_unknown_name_lists_the_known_ones_and_the_closest() -> None:
    reg = make()
    with pytest.raises(UnknownNameError) as info:
        reg.get("prelo")
    message = str(info.value)
    assert message == ("unknown widget 'prelo'. Did you mean 'prelu'? Known widgets: leaky-relu, not-callable, prelu")
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    with pytest.raises(UnknownNameError, match=r"^unknown widget 'xyz'\. Known widgets"):
        reg.get("xyz")  # nothing close: no suggestion


def test_create_of_a_non_callable_entry_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="widget 'not-callable' is not callable"):
        make().create("not-callable")
