"""``EmbeddedServer`` before ``start()`` / after ``stop()``: a coded error, not an
``AssertionError`` (which ``python -O`` would strip, and which callers had to catch)."""

from __future__ import annotations

import pytest

from avatarkit.errors import AvatarKitError, ErrorCode
from avatarkit.server.embedded import EmbeddedServer


@pytest.mark.parametrize("use", [lambda s: s.issue_token(), lambda s: s.stats])
def test_a_stopped_server_says_so_with_a_code(use):
    with pytest.raises(AvatarKitError) as err:
        use(EmbeddedServer())
    assert err.value.code == ErrorCode.CONNECTION_FAILED
