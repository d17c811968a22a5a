"""Python client SDK for Hubbub worlds.

    import asyncio, hubbub_client as hb

    async def main():
        client = await hb.connect("ws://127.0.0.1:7880", token, publish=hb.audio.speechlike())
        client.on(hb.ParticipantEntered, lambda e: print("hello", e.participant.name))
        client.set_pose((1.0, 0.0, 2.0))
        async for event in client.events():
            print(event)

See docs/clients.md.
"""

from . import audio, bots, wire
from .audio import LevelMeter, PcmTrack, distance_gain
from .backoff import Backoff
from .client import Client, JoinError, connect
from .events import (
    ActiveSpeakers,
    AudioSource,
    DataReceived,
    Disconnected,
    Event,
    Joined,
    Participant,
    ParticipantEntered,
    ParticipantLeft,
    PoseCorrected,
    PosesUpdated,
    ServerError,
    SlotsChanged,
)
from .slots import SlotMap
from .throttle import PoseThrottle
from .wire import Pose

__all__ = [
    "ActiveSpeakers",
    "AudioSource",
    "Backoff",
    "Client",
    "DataReceived",
    "Disconnected",
    "Event",
    "JoinError",
    "Joined",
    "LevelMeter",
    "Participant",
    "ParticipantEntered",
    "ParticipantLeft",
    "PcmTrack",
    "Pose",
    "PoseCorrected",
    "PoseThrottle",
    "PosesUpdated",
    "ServerError",
    "SlotMap",
    "SlotsChanged",
    "audio",
    "bots",
    "connect",
    "distance_gain",
    "wire",
]
