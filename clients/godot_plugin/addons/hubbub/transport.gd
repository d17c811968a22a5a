class_name HubbubTransport
extends RefCounted
## One connection to a Hubbub server, as HubbubWorld sees it: send protocol messages, receive them.
## Subclasses: HubbubWebSocketTransport (everything over the signaling WebSocket) and
## HubbubWebRTCTransport (poses and control on WebRTC data channels, signaling on the WebSocket).
## Transports are polled from HubbubWorld._process; they never block.

signal opened
signal message_received(msg: Dictionary)
signal closed(code: int, reason: String)
## A frame that could not be decoded (it is dropped; the connection stays).
signal bad_frame(message: String)

## Value of the join's `transport` field.
var kind := ""


func open(_url: String) -> Error:
	return ERR_UNAVAILABLE


func poll() -> void:
	pass


## Sends one message. `droppable` messages (poses, voice) are dropped rather than queued when the
## connection is backed up: a stale pose or a late voice frame is worth less than a bounded queue.
## Returns false if the message was not sent.
func send(_msg: Dictionary, _droppable: bool = false) -> bool:
	return false


func close(_code: int = 1000, _reason: String = "") -> void:
	pass


func is_open() -> bool:
	return false
