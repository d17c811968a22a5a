class_name HubbubWebRTCTransport
extends HubbubTransport
## join with transport = "webrtc": signaling (join, welcome, offer/answer, ice) on the WebSocket; the
## server's data channels `control` (reliable, ordered) and `state` (unordered, no retransmits) carry the
## rest once open. Poses go out on `state`, everything else on `control`; until the channels open, and
## for anything they cannot carry, the WebSocket is used.
##
## Godot's WebRTCPeerConnection has data channels only, no media tracks, so this transport carries no
## voice (the server's `voice` messages are WebSocket-transport only). HubbubWorld therefore picks it
## only when voice is disabled, or when asked explicitly. On desktop it needs the webrtc-native
## GDExtension; web exports use the browser's WebRTC.

var signaling := HubbubWebSocketTransport.new()
var pc: WebRTCPeerConnection
var channels := {}  # label -> WebRTCDataChannel


## True when a WebRTC implementation is present (an extension such as webrtc-native, or the browser).
static func available() -> bool:
	if OS.has_feature("web"):
		return true
	return not ClassDB.get_inheriters_from_class("WebRTCPeerConnectionExtension").is_empty()


func _init() -> void:
	kind = "webrtc"
	signaling.opened.connect(func() -> void: opened.emit())
	signaling.closed.connect(_on_signaling_closed)
	signaling.bad_frame.connect(func(m: String) -> void: bad_frame.emit(m))
	signaling.message_received.connect(_on_signaling_message)


func open(url: String) -> Error:
	return signaling.open(url)


func _on_signaling_message(msg: Dictionary) -> void:
	match msg["t"]:
		"welcome":
			_start_peer(msg.get("ice_servers", []))
			message_received.emit(msg)
		"offer":
			if pc != null:
				pc.set_remote_description("offer", str(msg.get("sdp", "")))
		"ice":
			if pc != null:
				pc.add_ice_candidate(str(msg.get("sdpMid", "")), int(msg.get("sdpMLineIndex", 0)),
						str(msg.get("candidate", "")))
		_:
			message_received.emit(msg)


func _start_peer(ice_servers: Variant) -> void:
	pc = WebRTCPeerConnection.new()
	var servers := []
	if typeof(ice_servers) == TYPE_ARRAY:
		for s: Variant in ice_servers:
			if typeof(s) == TYPE_DICTIONARY:
				var entry := {"urls": s.get("urls", [])}
				if s.has("username"):
					entry["username"] = s["username"]
					entry["credential"] = s.get("credential", "")
				servers.append(entry)
	if pc.initialize({"iceServers": servers}) != OK:
		push_warning("Hubbub: WebRTCPeerConnection.initialize failed; staying on the WebSocket")
		pc = null
		return
	pc.session_description_created.connect(_on_description)
	pc.ice_candidate_created.connect(_on_candidate)
	pc.data_channel_received.connect(_on_channel)


func _on_description(type: String, sdp: String) -> void:
	pc.set_local_description(type, sdp)
	if type == "answer":
		signaling.send({"t": "answer", "sdp": sdp})


func _on_candidate(media: String, index: int, name: String) -> void:
	signaling.send({"t": "ice", "candidate": name, "sdpMid": media, "sdpMLineIndex": index})


func _on_channel(channel: WebRTCDataChannel) -> void:
	channel.write_mode = WebRTCDataChannel.WRITE_MODE_BINARY
	channels[channel.get_label()] = channel


func poll() -> void:
	signaling.poll()
	if pc == null:
		return
	pc.poll()
	for channel: WebRTCDataChannel in channels.values():
		channel.poll()
		while channel.get_ready_state() == WebRTCDataChannel.STATE_OPEN and channel.get_available_packet_count() > 0:
			var frame := channel.get_packet()
			var res := HubbubProtocol.decode_frame(frame, channel.was_string_packet())
			if res["error"] != "":
				bad_frame.emit(res["error"])
			else:
				message_received.emit(res["msg"])


func send(msg: Dictionary, droppable: bool = false) -> bool:
	var label := "state" if msg.get("t") == "pose" else "control"
	var channel: WebRTCDataChannel = channels.get(label)
	if msg.get("t") != "voice" and channel != null and channel.get_ready_state() == WebRTCDataChannel.STATE_OPEN:
		if droppable and channel.get_buffered_amount() > HubbubWebSocketTransport.DROP_THRESHOLD:
			return false
		var frame := HubbubMsgPack.encode(msg)
		return not frame.is_empty() and channel.put_packet(frame) == OK
	return signaling.send(msg, droppable)


func _on_signaling_closed(code: int, reason: String) -> void:
	if pc != null:
		pc.close()
		pc = null
	channels.clear()
	closed.emit(code, reason)


func close(code: int = 1000, reason: String = "") -> void:
	signaling.close(code, reason)


func is_open() -> bool:
	return signaling.is_open()
