"""Events a Client reports, as plain frozen dataclasses (callbacks and the async iterator get the same)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .wire import Pose


@dataclass(frozen=True)
class Participant:
    """Another avatar inside this client's interest."""

    id: int
    identity: str
    name: str
    pose: Pose
    audio: bool = False
    video: bool = False


@dataclass(frozen=True)
class Joined:
    """The server accepted the join (also after each reconnect; `resumed` tells whether it kept our id)."""

    participant_id: int
    identity: str
    name: str
    world: dict[str, Any]
    grants: dict[str, Any]
    spawn: Pose
    resumed: bool = False


@dataclass(frozen=True)
class ParticipantEntered:
    participant: Participant


@dataclass(frozen=True)
class ParticipantLeft:
    id: int


@dataclass(frozen=True)
class PosesUpdated:
    tick: int
    poses: dict[int, Pose]


@dataclass(frozen=True)
class SlotsChanged:
    """Which participant each forwarded audio/video slot carries now (None = idle)."""

    audio: tuple[int | None, ...]
    video: tuple[int | None, ...]
    flat: tuple[bool, ...] = ()


@dataclass(frozen=True)
class ActiveSpeakers:
    ids: tuple[int, ...]
    levels: tuple[float, ...]  # dBov


@dataclass(frozen=True)
class DataReceived:
    sender: int
    topic: str
    payload: bytes


@dataclass(frozen=True)
class PoseCorrected:
    """The server overrode our pose (out of bounds, too fast, teleport, admin)."""

    pose: Pose
    reason: str


@dataclass(frozen=True)
class ServerError:
    code: int
    message: str
    ref: str | None = None


@dataclass(frozen=True)
class Disconnected:
    reason: str
    will_reconnect: bool
    code: int | None = None


@dataclass(frozen=True)
class AudioSource:
    """Where a block of received audio came from: a forwarded slot (and the avatar it carries) or the mix."""

    slot: int | None  # forwarded-voice slot index; None for the mixed bed
    pid: int | None  # the avatar the slot carries; None for the mixed bed or an idle slot
    flat: bool = False  # heard unattenuated (stage, meeting)

    @property
    def mixed(self) -> bool:
        return self.slot is None


Event = (
    Joined
    | ParticipantEntered
    | ParticipantLeft
    | PosesUpdated
    | SlotsChanged
    | ActiveSpeakers
    | DataReceived
    | PoseCorrected
    | ServerError
    | Disconnected
)

__all__ = [
    "ActiveSpeakers",
    "AudioSource",
    "DataReceived",
    "Disconnected",
    "Event",
    "Joined",
    "Participant",
    "ParticipantEntered",
    "ParticipantLeft",
    "PoseCorrected",
    "PosesUpdated",
    "ServerError",
    "SlotsChanged",
]
