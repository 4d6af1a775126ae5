from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses
from responses.registries import OrderedRegistry


@pytest.fixture
def shopify() -> Iterator[responses.RequestsMock]:
    """A fake Admin API: registered answers are given in order, and every one must be asked for."""
    with responses.RequestsMock(registry=OrderedRegistry) as mock:
        yield mock
