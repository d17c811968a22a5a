"""Per-avatar bit flags that the world passes to the interest engine each tick."""

from __future__ import annotations

from enum import IntFlag


class AvatarFlags(IntFlag):
    """What an avatar publishes and whether others may perceive it.

    A ``HIDDEN`` avatar (an admin, a recorder bot) still listens and sees, but it is never a source of
    audio, video or poses for anybody else, whatever its publish flags say.
    """

    NONE = 0
    PUBLISH_AUDIO = 1
    PUBLISH_VIDEO = 2
    HIDDEN = 4
